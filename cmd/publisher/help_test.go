package main

import (
	"testing"

	"github.com/eventfleet/eventfleet/internal/config"
)

// TestUsage_StatesTheDefaults: the help's "(default X)" of every setting is
// the default in force (config.Settings), so a default changed in one place
// fails here.
func TestUsage_StatesTheDefaults(t *testing.T) {
	t.Parallel()
	for _, p := range config.HelpProblems(config.BinaryPublisher, usage) {
		t.Error(p)
	}
}
