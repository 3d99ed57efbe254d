package chaos

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/eventfleet/eventfleet/internal/proctest"
)

func TestMain(m *testing.M) {
	proctest.Main(m,
		// toxiproxy's noop stub sends without watching its interrupt, so one
		// stays blocked when the link after it stopped reading (a timeout
		// toxic removed, the connection gone): the library's, not ours.
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
	)
}
