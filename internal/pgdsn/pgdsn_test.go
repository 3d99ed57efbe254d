package pgdsn

import (
	"strings"
	"testing"
)

// The forms internal/config and internal/pgtest each hid with a copy of
// their own before; internal/config's tests cover the rest.
func TestRedact_HidesEveryFormOfPassword(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"host=h user=u password=s3cret",
		"host=h password='s3 cret' user=u",
		"postgres://u:s3cret@h/db",
		"postgres://u@h/db?password=s3cret",
		"postgres://u:s3#cret@h/db",
	} {
		if got := Redact(in); strings.Contains(got, "s3") {
			t.Errorf("Redact(%q) = %q: the password shows", in, got)
		}
	}
}
