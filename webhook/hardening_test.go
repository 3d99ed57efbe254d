package webhook

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The TypeScript recipe's parseSecrets accepts "whsec_" with nothing (or
// anything not base64) after it: Buffer.from(..., "base64") never fails,
// so WEBHOOK_SECRET=whsec_$UNSET_VAR starts a receiver whose key is
// empty, and anyone can sign for it. ParseSecret, the Go side, refuses
// keys under MinSecretLen bytes; the recipe should too (refuse to start).
// Here a request signed with the empty key must not be handled.
func TestRecipeRefusesAnEmptyKey(t *testing.T) {
	t.Parallel()
	dir := buildRecipe(t)
	good := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	script := `import { parseSecrets } from "./dist/receiver.js";
for (const s of process.argv.slice(1)) {
  try { parseSecrets(s); console.log("accepted " + s); } catch { console.log("refused " + s); }
}`
	cmd := exec.Command("node", "--input-type=module", "-e", script, "whsec_", "whsec_abc", "whsec_"+strings.Repeat("A", 20), good+"x", good)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v: %s", err, out)
	}
	want := "refused whsec_\nrefused whsec_abc\nrefused whsec_" + strings.Repeat("A", 20) + "\nrefused " + good + "x\naccepted " + good + "\n"
	if string(out) != want {
		t.Errorf("the recipe's parseSecrets:\n%s\nwant:\n%s", out, want)
	}
}

// Secret hides its key from %v, %s, %#v and slog, but not from every
// verb, nor when it sits in an unexported field (fmt cannot call String
// there): "%d" of a Secret, and "%+v" of a Handler (slog's TextHandler
// formats an arbitrary value so), print the key bytes. Storing the key
// behind a pointer and adding a Format method closes both.
func TestSecretHiddenFromEveryVerb(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdefghijklmnop")
	s := newSecret(key)
	h, err := New(Config{URL: "https://receiver.example/", Secrets: []Secret{s}})
	if err != nil {
		t.Fatal(err)
	}
	asBytes := strings.Trim(fmt.Sprint(key), "[]") // "48 49 50 …"
	for _, got := range []string{
		fmt.Sprintf("%d", s), fmt.Sprintf("%+v", *h), fmt.Sprintf("%+v", h), fmt.Sprintf("%v", []any{*h}),
	} {
		if strings.Contains(got, asBytes) || strings.Contains(got, string(key)) {
			t.Errorf("the key shows: %s", got)
		}
	}
}

// ErrTimestamp's documentation promises "Only a request whose signature
// matched gets this error", so that a receiver may log it as a genuine
// but late request. A forger who sends a webhook-timestamp that is not
// digits gets ErrTimestamp without any signature being checked. Either
// check the signature first (the MAC covers the header's text, so a
// non-digit timestamp can still be verified and then refused), or change
// the documentation.
func TestErrTimestampOnlyAfterAMatch(t *testing.T) {
	t.Parallel()
	s := newSecret([]byte("0123456789abcdefghijklmnop"))
	header := http.Header{}
	header.Set(HeaderWebhookID, "catalog:1")
	header.Set(HeaderWebhookTimestamp, "soon")
	header.Set(HeaderWebhookSignature, "v1,AAAA")
	err := Verify([]Secret{s}, header, []byte("{}"), time.Now())
	if errors.Is(err, ErrTimestamp) {
		t.Errorf("Verify = %v: ErrTimestamp for a request whose signature does not match", err)
	}
}
