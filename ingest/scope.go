package ingest

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/eventfleet/eventfleet/amqp"
)

// Caller is who presented a key, and the event types that key may publish.
// The zero Caller has no name and allows any type.
type Caller struct {
	// Name is the caller's name from the key line; the events it publishes
	// carry it as their app_id.
	Name string
	// types are the key's binding keys as written; nil means any type.
	// Shared by every copy of the Caller, so never written after parsing.
	types []string
}

// Allows reports whether the key may publish an event of eventType: whether
// one of its types matches eventType as a topic binding key matches a
// routing key.
func (c Caller) Allows(eventType string) bool {
	if c.types == nil {
		return true
	}
	for _, t := range c.types {
		if amqp.MatchBindingKey(t, eventType) {
			return true
		}
	}
	return false
}

// Types are the key's types as written on its line; nil means any type (no
// list, or one with "#" in it).
func (c Caller) Types() []string { return slices.Clone(c.types) }

// parseScope reads a line's types field: binding keys separated by commas.
func parseScope(field string) ([]string, error) {
	types := strings.Split(field, ",")
	for i, t := range types {
		if t == "" {
			return nil, fmt.Errorf("type %d of the list is empty: separate the types by single commas, "+
				"with none at either end", i+1)
		}
		if err := validateScopeType(t); err != nil {
			return nil, err
		}
	}
	if slices.Contains(types, "#") {
		return nil, nil // "#" matches every type: the others add nothing
	}
	return types, nil
}

// validateScopeType checks one type of a key's list: a binding key as an
// EVENT_TYPES entry is, with none of the key file's separators in it (which
// only KeyLine can be handed), and not a key.
func validateScopeType(t string) error {
	if strings.HasPrefix(t, KeyPrefix) {
		return fmt.Errorf("a type starts with %q, the prefix of keys: that looks like a key, and a line "+
			"holds only the key's SHA-256", KeyPrefix)
	}
	if i := strings.IndexFunc(t, separator); i >= 0 {
		r, _ := utf8.DecodeRuneInString(t[i:])
		return fmt.Errorf("type %q has %q in it, which separates types, lines or fields in a key file", t, r)
	}
	if err := amqp.ValidateBindingKey(t); err != nil {
		return fmt.Errorf("type %q: %v", t, err)
	}
	return nil
}

// separator is what splits a key file into lines, fields and types.
func separator(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) }
