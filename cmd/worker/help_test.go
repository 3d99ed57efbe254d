package main

import (
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/internal/config"
)

// TestUsage_StatesTheDefaults: the help's "[default]" of every setting is
// the default in force (config.Settings), so a default changed in one place
// fails here.
func TestUsage_StatesTheDefaults(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	usage(&b)
	for _, p := range config.HelpProblems(config.BinaryWorker, b.String()) {
		t.Error(p)
	}
}
