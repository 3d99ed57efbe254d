package amqp_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventfleet/eventfleet/amqp"
)

// The answers below are RabbitMQ 3.10.8's: every pair was published through
// a topic exchange with these bindings, and the broker routed exactly these.
func TestMatchBindingKey(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		binding, routing string
		want             bool
	}{
		{"#", "", true},
		{"#", "a", true},
		{"#", "a.b.c", true},
		{"#", ".", true},
		{"a.#", "a", true},
		{"a.#", "a.b", true},
		{"a.#", "a.b.c", true},
		{"a.#", "b.a", false},
		{"a.#", "", false},
		{"#.b", "b", true},
		{"#.b", "a.b", true},
		{"#.b", "a.b.c", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a..c", true},
		{"a.*.c", "a.c", false},
		{"a.*.c", "a.b.b.c", false},
		{"a.#.c", "a.c", true},
		{"a.#.c", "a.b.b.c", true},
		{"*", "a", true},
		{"*", "a.b", false},
		{"*", "", false},
		{"*.*", "a.b", true},
		{"*.*", ".", true},
		{"*.#", "", false},
		{"#.*", "a", true},
		{"#.#", "", true},
		{"a", "a", true},
		{"a", "A", false},
		{"a", "a.", false},
		{"", "", true},
		{"", "a", false},
		// Empty words are words: "." is two of them, "a." is "a" then one.
		{".", ".", true},
		{".", "", false},
		{"a.", "a.", true},
		{"a.", "a", false},
		{".a", ".a", true},
		{"a..b", "a..b", true},
		{"a..b", "a.b", false},
		{"*.", "a.", true},
		{"#.", "a.", true},
		{"#.", "a", false},
		{".#", ".a.b", true},
		// A word mixing a wildcard with text is literal, not a pattern.
		{"*Event", "CardAddedEvent", false},
		{"*Event", "*Event", true},
		{"a.#.#.b", "a.b", true},
		{"#.a.#", "x.a.y", true},
		{"#.a.#", "x.b.y", false},
	} {
		if got := amqp.MatchBindingKey(c.binding, c.routing); got != c.want {
			t.Errorf("MatchBindingKey(%q, %q) = %v, want %v", c.binding, c.routing, got, c.want)
		}
	}
}

// topicRegexp is a reference matcher: a key of n words becomes n times "."
// followed by the word, and each binding word a regular expression over that.
func topicRegexp(binding string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	if binding != "" {
		for _, w := range strings.Split(binding, ".") {
			switch w {
			case "*":
				b.WriteString(`\.[^.]*`)
			case "#":
				b.WriteString(`(?:\.[^.]*)*`)
			default:
				b.WriteString(`\.` + regexp.QuoteMeta(w))
			}
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func referenceMatch(re *regexp.Regexp, routing string) bool {
	if routing != "" {
		routing = "." + routing
	}
	return re.MatchString(routing)
}

// Every binding key of up to 4 characters over {a, b, ., *, #} against every
// routing key of up to 5 over {a, b, .}: about 300,000 pairs.
func TestMatchBindingKey_AgreesWithRegexp(t *testing.T) {
	t.Parallel()
	bindings, routings := allStrings("ab.*#", 4), allStrings("ab.", 5)
	for _, b := range bindings {
		re := topicRegexp(b)
		for _, r := range routings {
			if got, want := amqp.MatchBindingKey(b, r), referenceMatch(re, r); got != want {
				t.Fatalf("MatchBindingKey(%q, %q) = %v, the reference says %v", b, r, got, want)
			}
		}
	}
}

func allStrings(alphabet string, maxLen int) []string {
	out := []string{""}
	level := []string{""}
	for range maxLen {
		var next []string
		for _, s := range level {
			for _, c := range alphabet {
				next = append(next, s+string(c))
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

func FuzzMatchBindingKey(f *testing.F) {
	for _, s := range [][2]string{{"#", ""}, {"a.*.c", "a.b.c"}, {"#.b", "a.b"}, {"a.#.#.b", "a.x.b"}, {".", "."}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, binding, routing string) {
		if len(binding) > 255 || len(routing) > 255 {
			t.Skip("longer than an AMQP short string")
		}
		if !utf8.ValidString(binding) {
			t.Skip("the reference's regexp needs UTF-8")
		}
		if got, want := amqp.MatchBindingKey(binding, routing), referenceMatch(topicRegexp(binding), routing); got != want {
			t.Fatalf("MatchBindingKey(%q, %q) = %v, the reference says %v", binding, routing, got, want)
		}
	})
}
