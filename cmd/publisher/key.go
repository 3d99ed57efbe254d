package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/eventfleet/eventfleet/ingest"
)

// keyNew is "publisher key new CALLER [--types T,…]": it makes a random API
// key and prints it with the line that lets `publisher serve` accept it.
// Only the line's hash is ever stored; the key is shown once.
func keyNew(caller, types string, stdout io.Writer) error {
	var scope []string
	if types != "" {
		for t := range strings.SplitSeq(types, ",") {
			scope = append(scope, strings.TrimSpace(t))
		}
	}
	key, err := ingest.NewKey()
	if err != nil {
		return err
	}
	line, err := ingest.KeyLine(caller, key, scope)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadArgs, err)
	}
	fmt.Fprintf(stdout, `# The API key of %s: give it to the caller, who sends it as
#   Authorization: Bearer <key>
# It is not stored anywhere; lose it and make another.
%s

# Add this line to PUBLISHER_KEYS (lines separated by newlines or ";") or to
# the file PUBLISHER_KEYS_FILE names, and restart publisher serve. On Fly:
#   fly secrets set PUBLISHER_KEYS='<this line>;<the lines you keep>'
%s
`, caller, key, line)
	return nil
}
