package event

import (
	"fmt"
	"unicode/utf8"
)

// checkText reports why s cannot be an envelope field shown in logs, HTTP
// headers and terminals: invalid UTF-8, or a control character (C0, DEL or
// C1, U+0080–U+009F). nil when s is fine.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("%q contains control character %U", s, r)
		}
	}
	return nil
}
