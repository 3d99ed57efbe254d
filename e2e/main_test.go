package e2e

import (
	"testing"

	"github.com/eventfleet/eventfleet/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }
