package ingest_test

import (
	"slices"
	"testing"

	"github.com/eventfleet/eventfleet/ingest"
)

// scoped is the Caller of a key line with the given types field ("" = none).
func scoped(t *testing.T, types string) ingest.Caller {
	t.Helper()
	line := "alice " + ingest.HashKey(keyA)
	if types != "" {
		line += " " + types
	}
	k, err := ingest.ParseKeys(line)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := k.Authenticate(keyA)
	if !ok {
		t.Fatal("the key is not accepted")
	}
	return c
}

func TestScope_Allows(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		types      string
		allowed    []string
		notAllowed []string
	}{
		{"", []string{"CardAddedEvent", "Billing.Invoice.Paid", "a..b"}, nil},
		{"#", []string{"CardAddedEvent", "Billing.Invoice"}, nil},
		{"CardAddedEvent", []string{"CardAddedEvent"}, []string{"CardAddedEvent.v2", "Card", "cardaddedevent"}},
		{"Billing.*", []string{"Billing.Invoice", "Billing."}, []string{"Billing", "Billing.Invoice.Paid", "Shipping.Invoice"}},
		{"Billing.#", []string{"Billing", "Billing.Invoice", "Billing.Invoice.Paid"}, []string{"Shipping.Billing", "BillingX"}},
		{"#.Created", []string{"Created", "Order.Created", "a.b.Created"}, []string{"Order.Created.v2"}},
		{"Billing.*,CardAddedEvent,*.*.Paid", []string{"Billing.Invoice", "CardAddedEvent", "Billing.Invoice.Paid"}, []string{"Billing.Invoice.Due", "Card"}},
		{"*", []string{"CardAddedEvent"}, []string{"Billing.Invoice"}},
	} {
		caller := scoped(t, c.types)
		for _, et := range c.allowed {
			if !caller.Allows(et) {
				t.Errorf("types %q: %q not allowed", c.types, et)
			}
		}
		for _, et := range c.notAllowed {
			if caller.Allows(et) {
				t.Errorf("types %q: %q allowed", c.types, et)
			}
		}
	}
}

func TestScope_TypesAsWritten(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		types string
		want  []string
	}{
		{"", nil},
		{"#", nil},
		{"Billing.*,#", nil}, // "#" is any type, whatever else is listed
		{"Billing.*,CardAddedEvent", []string{"Billing.*", "CardAddedEvent"}},
		{"B,A,B", []string{"B", "A", "B"}},
	} {
		if got := scoped(t, c.types).Types(); !slices.Equal(got, c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("types %q: Types = %#v, want %#v", c.types, got, c.want)
		}
	}
}

func TestScope_TypesIsACopy(t *testing.T) {
	t.Parallel()
	c := scoped(t, "Billing.*")
	c.Types()[0] = "#"
	if c.Allows("Shipping") || !slices.Equal(c.Types(), []string{"Billing.*"}) {
		t.Fatal("changing what Types returned changed the key's scope")
	}
}

func TestCaller_ZeroAllowsAnyType(t *testing.T) {
	t.Parallel()
	var c ingest.Caller
	if !c.Allows("CardAddedEvent") || c.Types() != nil {
		t.Fatal("the zero Caller has a scope")
	}
}
