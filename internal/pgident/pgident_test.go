package pgident

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTable(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxPart)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"eventfleet_outbox", true},
		{"app.eventfleet_outbox", true},
		{long + "." + long, true},
		{long + "a", false},
		{"a.b.c", false},
		{"Bad-Name", false},
		{"1abc", false},
		{"", false},
		{"app.", false},
		{"Robert'); DROP TABLE x;--", false},
	} {
		_, err := ParseTable(tc.name)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidTable) {
			t.Errorf("ParseTable(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxPart)
	for _, tc := range []struct{ base, suffix, want string }{
		{"eventfleet_outbox", "_set_aside", "eventfleet_outbox_set_aside"},
		// The channel of a long schema.table, as relays and hand-installed
		// triggers of earlier releases use it: must not change.
		{"orders_service_schema_v2.orders_service_eventfleet_outbox_table_v2", "",
			"orders_service_schema_v2.orders_service_eventf_23056df2ada064a3"},
	} {
		if got := Name(tc.base, tc.suffix); got != tc.want {
			t.Errorf("Name(%q, %q) = %q, want %q", tc.base, tc.suffix, got, tc.want)
		}
	}
	a, b := Name(long+"_a", "_set_aside_aggregate"), Name(long+"_b", "_set_aside_aggregate")
	if len(a) != MaxName || a == b || !strings.HasSuffix(a, "_set_aside_aggregate") {
		t.Errorf("long names: %q and %q, want %d bytes each, distinct, suffix kept", a, b, MaxName)
	}
}
