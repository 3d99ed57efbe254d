package ingest

import "testing"

func TestConfig_Defaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		cfg                 Config
		maxEvents, maxDepth int
		maxInFlight, burst  int
	}{
		{"zero", Config{}, DefaultMaxEvents, DefaultMaxDepth, DefaultMaxInFlight, 0},
		{"rate below MaxEvents: burst MaxEvents", Config{Rate: 2.5}, 500, 64, 10_000, 500},
		{"rate above MaxEvents: burst the rate rounded up", Config{Rate: 700.2}, 500, 64, 10_000, 701},
		{"a set burst stays", Config{Rate: 1, Burst: 900}, 500, 64, 10_000, 900},
		{"MaxEvents over DefaultMaxInFlight raises it", Config{MaxEvents: 20_000}, 20_000, 64, 20_000, 0},
		{"a set MaxInFlight stays", Config{MaxEvents: 2, MaxInFlight: 3}, 2, 64, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.cfg.withDefaults()
			if c.MaxEvents != tt.maxEvents || c.MaxDepth != tt.maxDepth || c.MaxInFlight != tt.maxInFlight || c.Burst != tt.burst {
				t.Errorf("MaxEvents %d MaxDepth %d MaxInFlight %d Burst %d; want %d %d %d %d",
					c.MaxEvents, c.MaxDepth, c.MaxInFlight, c.Burst, tt.maxEvents, tt.maxDepth, tt.maxInFlight, tt.burst)
			}
			if c.AccessLog != c.Logger || c.Logger == nil {
				t.Error("AccessLog does not default to Logger")
			}
		})
	}
}
