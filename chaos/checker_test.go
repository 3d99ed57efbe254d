package chaos

import (
	"errors"
	"strings"
	"testing"
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
	if r := c.Report(nil); !r.OK() || r.Confirmed != 2 || r.Failed != 1 {
		t.Fatalf("report %+v", r)
	}
}
