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
		// The same on the link's input side: its reader copies the client's
		// bytes into the first toxic's channel, and blocks on that send for
		// good once the chain stopped reading (a clean-clone CI run caught
		// one, 2 minutes after its test ended).
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
	)
}
