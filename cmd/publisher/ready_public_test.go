package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/amqp"
)

// TestPublicReady_NamesTheMissingTopology: with TOPOLOGY=passive and the
// shared exchange missing, the public /readyz says so by kind, without the
// exchange's or the broker's name.
func TestPublicReady_NamesTheMissingTopology(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf("broker not connected: %w: exchange %q does not exist on amqp://user@broker-7/", amqp.ErrTopologyMissing, "secret_exchange")
	err := publicReady(func() error { return cause })()
	if !errors.Is(err, amqp.ErrTopologyMissing) || strings.Contains(err.Error(), "secret_exchange") || strings.Contains(err.Error(), "broker-7") {
		t.Errorf("public reason %q, want the kind ErrTopologyMissing and no names", err)
	}
}
