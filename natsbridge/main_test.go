package natsbridge_test

import (
	"testing"

	"github.com/eventfleet/eventfleet/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }
