package chaos

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/amqp"
)

// The checker itself must be able to fail.
func TestChecker(t *testing.T) {
	t.Parallel()
	c := NewChecker()
	c.Published("a", nil)
	c.Published("b", nil)
	c.Published("c", errors.New("timeout"))
	c.Handled("a")
	c.Handled("a")
	c.Handled("x")
	if c.Settled() {
		t.Fatal("settled with b outstanding")
	}
	r := c.Report(func(id string) bool { return strings.ContainsAny(id, "abc") })
	if r.OK() || len(r.Lost) != 1 || r.Lost[0] != "b" || len(r.Phantoms) != 1 || r.Phantoms[0] != "x" || r.Duplicates != 1 {
		t.Fatalf("report %+v", r)
	}
	c.Dead("b")
	if !c.Settled() {
		t.Fatal("not settled after b was dead-lettered")
	}
	if r := c.Report(nil); !r.OK() || r.Confirmed != 2 || r.Failed != 1 || r.Indeterminate != 1 || r.Arrived != 0 {
		t.Fatalf("report %+v", r)
	}
	// A nack is an answer: failed, not indeterminate. An indeterminate
	// publish that arrives is counted, and is no phantom.
	c.Published("d", fmt.Errorf("publish: %w", amqp.ErrNacked))
	c.Handled("c")
	if r := c.Report(func(id string) bool { return strings.ContainsAny(id, "abcdx") }); !r.OK() || r.Failed != 2 || r.Indeterminate != 1 || r.Arrived != 1 {
		t.Fatalf("report %+v", r)
	}
}
