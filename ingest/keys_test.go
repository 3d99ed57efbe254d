package ingest_test

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eventfleet/eventfleet/ingest"
)

// Keys made once for the whole file; their hashes go on the lines.
var (
	keyA  = mustKey()
	keyA2 = mustKey()
	keyB  = mustKey()
)

func mustKey() string {
	k, err := ingest.NewKey()
	if err != nil {
		panic(err)
	}
	return k
}

func TestParseKeys_Format(t *testing.T) {
	t.Parallel()
	text := "\ufeff# publisher keys\r\n" +
		"\n" +
		"   # an indented comment\n" +
		"alice " + ingest.HashKey(keyA) + " Billing.*,CardAddedEvent\r\n" +
		"bob " + strings.ToUpper(ingest.HashKey(keyB)) + "; alice " + ingest.HashKey(keyA2) + " ;;\n" +
		"  \t  \n"
	k, err := ingest.ParseKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 3 {
		t.Fatalf("Len = %d, want 3", k.Len())
	}
	if got := k.Callers(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("Callers = %q", got)
	}
	for _, c := range []struct {
		key, name string
		types     []string
	}{
		{keyA, "alice", []string{"Billing.*", "CardAddedEvent"}},
		{keyA2, "alice", nil},
		{keyB, "bob", nil}, // an upper-case hash is accepted
	} {
		got, ok := k.Authenticate(c.key)
		if !ok || got.Name != c.name || !slices.Equal(got.Types(), c.types) {
			t.Errorf("Authenticate = %q %q %v, want %q %q", got.Name, got.Types(), ok, c.name, c.types)
		}
	}
}

func TestParseKeys_NoKeyLineIsNoError(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", "\n\n", "# only a comment", " ; ;# x"} {
		k, err := ingest.ParseKeys(text)
		if err != nil || k.Len() != 0 || len(k.Callers()) != 0 {
			t.Errorf("ParseKeys(%q) = Len %d, %v", text, k.Len(), err)
		}
	}
}

func TestParseKeys_Rejects(t *testing.T) {
	t.Parallel()
	h := ingest.HashKey(keyA)
	for _, c := range []struct {
		name, text string
		want       []string // in the message, in order
		secret     string   // never in the message
	}{
		{"short hash", "# keys\nalice abc", []string{"line 2: ", "(3 characters) is not a SHA-256 hex digest (64 hex characters)", "never the key itself"}, "abc"},
		{"non-hex hash", "alice " + strings.Repeat("g", 64), []string{"line 1: ", "not a SHA-256 hex digest", "position 1"}, "ggg"},
		{"key pasted for its hash", "alice " + keyA, []string{"line 1: ", "is a key itself", "sha256(key)"}, keyA},
		{"other secret pasted for its hash", "alice s3cret-value", []string{"line 1: ", "not a SHA-256 hex digest"}, "s3cret"},
		{"a key alone", "alice " + h + ";" + keyB, []string{"line 2: ", "looks like a key itself"}, keyB},
		{"a key as the caller", keyB + " " + h, []string{"line 1: ", "prefix of keys"}, keyB},
		{"caller with a bad character", "al!ce " + h, []string{"line 1: ", `has '!' at byte 3`, "ASCII letters"}, ""},
		{"caller with a control character", "ali\x01ce " + h, []string{"line 1: ", `'\x01' at byte 4`}, ""},
		{"caller too long", strings.Repeat("a", 201) + " " + h, []string{"line 1: ", "201 bytes, the limit is 200"}, ""},
		{"too many fields", "alice " + h + " Billing.* " + keyB, []string{"line 1: ", "found 4 fields", "commas, no spaces"}, keyB},
		{"one field", "alice", []string{"line 1: ", "found 1 fields"}, ""},
		{"a wildcard inside a word", "alice " + h + " Billing.Invoice,*Event", []string{"line 1: ", `type "*Event"`, "mixes a wildcard"}, ""},
		{"an empty type", "alice " + h + " A,,B", []string{"line 1: ", "type 2 of the list is empty"}, ""},
		{"a trailing comma", "alice " + h + " A,", []string{"line 1: ", "type 2 of the list is empty"}, ""},
		{"a key as a type", "alice " + h + " A," + keyB, []string{"line 1: ", "a type starts with", "looks like a key"}, keyB},
		{"a type over 255 bytes", "alice " + h + " " + strings.Repeat("A", 256), []string{"line 1: ", "longer than 255 bytes"}, ""},
		{"the hash of an empty key", "alice " + ingest.HashKey(""), []string{"line 1: ", "empty key"}, ""},
		{"a duplicate hash", "alice " + h + "\n# rotated\nbob " + h, []string{"line 3 has the same hash as line 1", "own key"}, ""},
		{"a duplicate hash for the same caller", "alice " + h + " A; alice " + strings.ToUpper(h) + " B", []string{"line 2 has the same hash as line 1"}, ""},
		{"lines counted across ; and newlines", "# a; alice " + h + "\nbob abc", []string{"line 3: "}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			k, err := ingest.ParseKeys(c.text)
			if !errors.Is(err, ingest.ErrInvalidKeys) {
				t.Fatalf("ParseKeys = %v, %v; want ErrInvalidKeys", k, err)
			}
			msg := err.Error()
			rest := msg
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q missing (or out of order) in %q", w, msg)
				}
				rest = rest[i+len(w):]
			}
			if c.secret != "" && strings.Contains(msg, c.secret) {
				t.Fatalf("the message repeats what may be a key: %q", msg)
			}
		})
	}
}

func TestKeys_Authenticate(t *testing.T) {
	t.Parallel()
	k, err := ingest.ParseKeys(strings.Join([]string{
		"alice " + ingest.HashKey(keyA) + " Billing.#",
		"bob " + ingest.HashKey(keyB),
		"alice " + ingest.HashKey(keyA2) + " Billing.#,Card.*", // rotation: a second key, its own scope
	}, ";"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, token, caller string
		ok                  bool
		types               []string
	}{
		{"right key", keyA, "alice", true, []string{"Billing.#"}},
		{"other caller", keyB, "bob", true, nil},
		{"rotated key of the same caller", keyA2, "alice", true, []string{"Billing.#", "Card.*"}},
		{"wrong key", mustKey(), "", false, nil},
		{"empty token", "", "", false, nil},
		{"the hash instead of the key", ingest.HashKey(keyA), "", false, nil},
		{"a key with a trailing space", keyA + " ", "", false, nil},
		{"a key missing its prefix", strings.TrimPrefix(keyA, ingest.KeyPrefix), "", false, nil},
	} {
		got, ok := k.Authenticate(c.token)
		if ok != c.ok || got.Name != c.caller || !slices.Equal(got.Types(), c.types) {
			t.Errorf("%s: Authenticate = %q %q %v, want %q %q %v", c.name, got.Name, got.Types(), ok, c.caller, c.types, c.ok)
		}
	}
}

func TestKeys_AuthenticateConcurrently(t *testing.T) {
	t.Parallel()
	k, err := ingest.ParseKeys("alice " + ingest.HashKey(keyA) + " A.*;bob " + ingest.HashKey(keyB))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				key, want := keyA, "alice"
				if i%2 == 1 {
					key, want = keyB, "bob"
				}
				if c, ok := k.Authenticate(key); !ok || c.Name != want || !c.Allows("A.x") {
					t.Errorf("Authenticate = %q %v, want %q", c.Name, ok, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestKeys_NilIsEmpty(t *testing.T) {
	t.Parallel()
	var k *ingest.Keys
	if _, ok := k.Authenticate(keyA); ok || k.Len() != 0 || k.Callers() != nil {
		t.Fatal("a nil *Keys let a key in or is not empty")
	}
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	a, b := mustKey(), mustKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	for _, k := range []string{a, b} {
		if !strings.HasPrefix(k, ingest.KeyPrefix) {
			t.Fatalf("%q lacks the prefix %q", k, ingest.KeyPrefix)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(k, ingest.KeyPrefix))
		if err != nil || len(raw) < 32 {
			t.Fatalf("%q carries %d random bytes (%v), want at least 32", k, len(raw), err)
		}
	}
}

func TestHashKey(t *testing.T) {
	t.Parallel()
	// FIPS 180-2's first example.
	if got := ingest.HashKey("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashKey(abc) = %s", got)
	}
}

func TestKeyLine_RoundTrips(t *testing.T) {
	t.Parallel()
	for _, types := range [][]string{nil, {"Billing.*"}, {"Billing.#", "CardAddedEvent", "*.Created"}} {
		key := mustKey()
		line, err := ingest.KeyLine("svc-billing.eu_1", key, types)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, key) {
			t.Fatalf("the line %q holds the key", line)
		}
		k, err := ingest.ParseKeys("# existing\n" + line)
		if err != nil {
			t.Fatalf("KeyLine's %q does not parse: %v", line, err)
		}
		c, ok := k.Authenticate(key)
		if !ok || c.Name != "svc-billing.eu_1" || !slices.Equal(c.Types(), types) {
			t.Fatalf("%q: Authenticate = %q %q %v", line, c.Name, c.Types(), ok)
		}
	}
}

func TestKeyLine_Rejects(t *testing.T) {
	t.Parallel()
	key := mustKey()
	for _, c := range []struct {
		name, caller, key string
		types             []string
		want              string
	}{
		{"bad caller", "alice smith", key, nil, "has ' ' at byte 6"},
		{"empty caller", "", key, nil, "caller name is empty"},
		{"empty key", "alice", "", nil, "key is empty"},
		{"wildcard inside a word", "alice", key, []string{"*Event"}, "mixes a wildcard"},
		{"empty type", "alice", key, []string{"A", ""}, "empty event type"},
		{"type with a comma", "alice", key, []string{"A,B"}, `has ','`},
		{"type with a space", "alice", key, []string{"A B"}, `has ' '`},
		{"type with a semicolon", "alice", key, []string{"A;B"}, `has ';'`},
		{"type with a no-break space", "alice", key, []string{"A\u00a0B"}, `has '\u00a0'`},
	} {
		line, err := ingest.KeyLine(c.caller, c.key, c.types)
		if !errors.Is(err, ingest.ErrInvalidKeys) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: KeyLine = %q, %v; want an error with %q", c.name, line, err, c.want)
		}
	}
}

func TestValidateCaller(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "billing", "svc-billing.eu_1", "A9", strings.Repeat("x", 200)} {
		if err := ingest.ValidateCaller(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "café", "a/b", "a:b", "a\nb", "a\x00", strings.Repeat("x", 201), ingest.KeyPrefix + "x"} {
		err := ingest.ValidateCaller(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if len(bad) > 1 && strings.Contains(err.Error(), bad) {
			t.Errorf("%q: the message repeats the name: %v", bad, err)
		}
	}
}
