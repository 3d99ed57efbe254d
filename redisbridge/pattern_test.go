package redisbridge

import "testing"

func TestTypeOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ pattern, channel, want string }{
		{"events:*", "events:CardAddedToLibraryEvent", "CardAddedToLibraryEvent"},
		{"events:*", "events:", ""},
		{"app.*.v1", "app.Card.v1", "Card"},
		{"*", "Card", "Card"},
		{"events:*:v1", "events:v1", ""}, // shorter than the pattern's fixed parts
	} {
		if got := typeOf(tc.pattern, tc.channel); got != tc.want {
			t.Errorf("typeOf(%q, %q) = %q, want %q", tc.pattern, tc.channel, got, tc.want)
		}
	}
}
