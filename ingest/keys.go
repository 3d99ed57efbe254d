package ingest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// KeyPrefix is what every key NewKey makes starts with, so that a key pasted
// where its hash belongs, or found in a log, is recognised for what it is.
const KeyPrefix = "efk_"

// keyBytes is how many random bytes a key carries: 256 bits, so that its
// SHA-256 cannot be reversed by guessing and an unsalted hash is enough.
const keyBytes = 32

// maxCallerLen is the longest caller name, in bytes. It becomes the events'
// app_id, an AMQP short string of at most 255.
const maxCallerLen = 200

// ErrInvalidKeys wraps every error of ParseKeys and KeyLine. The message names
// the line (1-based, counting ";"-separated lines) and what is wrong with it,
// and never repeats a field that could be a key.
var ErrInvalidKeys = errors.New("ingest: invalid publisher keys")

// emptyHash is sha256(""): a line with it would let an empty token in.
var emptyHash = sha256.Sum256(nil)

// Keys are the API keys a publisher accepts, as parsed from a key file:
//
//	# comment
//	<caller> <sha256 hex of the key> [<type>,<type>,…]
//
// one key per line, where ";" also ends a line (an environment variable's
// value is one line) and blank lines are skipped. Each type is a topic
// binding key checked as an EVENT_TYPES entry is; no list, or a "#" in it,
// means any type. A caller may have several lines, each with its own key and
// types, so that a key is rotated by adding the new line before removing the
// old one. Only hashes are kept. Keys is immutable and safe for concurrent use.
type Keys struct {
	lines []keyLine
}

type keyLine struct {
	hash   [sha256.Size]byte
	caller Caller
}

// ParseKeys parses a key file. Text with no key line (empty, or only
// comments) gives Keys of Len 0 and no error: whether that is acceptable is
// the caller's decision.
func ParseKeys(text string) (*Keys, error) {
	text = strings.TrimPrefix(text, "\ufeff") // a BOM from a Windows editor
	k := &Keys{}
	seen := map[[sha256.Size]byte]int{} // hash → the line it was on
	for i, line := range strings.Split(strings.ReplaceAll(text, ";", "\n"), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		l, err := parseKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrInvalidKeys, n, err)
		}
		if first, dup := seen[l.hash]; dup {
			return nil, fmt.Errorf("%w: line %d has the same hash as line %d, so one key would stand for both lines' "+
				"callers and scopes: give each line its own key (publisher key new)", ErrInvalidKeys, n, first)
		}
		seen[l.hash] = n
		k.lines = append(k.lines, l)
	}
	return k, nil
}

func parseKeyLine(line string) (keyLine, error) {
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 3 {
		if len(f) == 1 && strings.HasPrefix(f[0], KeyPrefix) {
			return keyLine{}, fmt.Errorf("this looks like a key itself (it starts with %q); a line is "+
				"\"<caller> <sha256 hex of the key> [<type>,…]\", and the key stays with the caller", KeyPrefix)
		}
		return keyLine{}, fmt.Errorf("want \"<caller> <sha256 hex of the key> [<type>,<type>,…]\", found %d fields "+
			"(the types are one field: commas, no spaces)", len(f))
	}
	if err := ValidateCaller(f[0]); err != nil {
		return keyLine{}, err
	}
	l := keyLine{caller: Caller{Name: f[0]}}
	var err error
	if l.hash, err = parseHash(f[1]); err != nil {
		return keyLine{}, err
	}
	if len(f) == 3 {
		if l.caller.types, err = parseScope(f[2]); err != nil {
			return keyLine{}, err
		}
	}
	return l, nil
}

// parseHash reads the hash field. Its errors never repeat the field: what is
// there instead of a hash may well be a key.
func parseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if strings.HasPrefix(s, KeyPrefix) {
		return h, fmt.Errorf("the second field is a key itself (it starts with %q), not its hash: "+
			"put sha256(key) there, never the key (publisher key new prints the line to add); "+
			"treat this key as exposed and make a new one", KeyPrefix)
	}
	if len(s) != 2*sha256.Size {
		return h, fmt.Errorf("the second field (%d characters) is not a SHA-256 hex digest (64 hex characters): "+
			"put sha256(key), never the key itself", len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil { // upper case is accepted too
		return h, fmt.Errorf("the second field is not a SHA-256 hex digest (64 hex characters, a non-hex one at "+
			"position %d): put sha256(key), never the key itself", strings.IndexFunc(s, notHex)+1)
	}
	if h == emptyHash {
		return h, errors.New("the second field is the SHA-256 of an empty key, which must never authenticate anyone")
	}
	return h, nil
}

func notHex(r rune) bool {
	return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
}

// ValidateCaller checks a caller name. The name becomes the app_id of the
// caller's events, which receivers read as the events' source, so it is kept
// to 1–200 ASCII letters, digits, ".", "_" and "-". A name starting with
// KeyPrefix is refused: it is most likely a key in the wrong field, and would
// be sent to every receiver. The errors never repeat the name.
func ValidateCaller(name string) error {
	switch {
	case name == "":
		return errors.New("the caller name is empty")
	case len(name) > maxCallerLen:
		return fmt.Errorf("the caller name is %d bytes, the limit is %d", len(name), maxCallerLen)
	case strings.HasPrefix(name, KeyPrefix):
		return fmt.Errorf("the caller name starts with %q, the prefix of keys: that looks like a key, and a caller "+
			"name is sent to every receiver as the events' app_id; name the caller instead", KeyPrefix)
	}
	for i, r := range name {
		if r >= 0x80 || !callerByte(byte(r)) {
			return fmt.Errorf("the caller name has %q at byte %d: use ASCII letters, digits, \".\", \"_\" "+
				"and \"-\" only (the name becomes the events' app_id)", r, i+1)
		}
	}
	return nil
}

func callerByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// Len is the number of key lines.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.lines)
}

// Callers are the distinct caller names, sorted.
func (k *Keys) Callers() []string {
	if k == nil {
		return nil
	}
	names := make([]string, 0, len(k.lines))
	for _, l := range k.lines {
		names = append(names, l.caller.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Authenticate returns the caller of a presented key. It hashes token with
// SHA-256 and compares the hash with every line's, in constant time and
// without stopping at a match, so that how long it takes says nothing about
// which line, if any, matched. An empty token is never a key.
func (k *Keys) Authenticate(token string) (Caller, bool) {
	if k == nil || token == "" {
		return Caller{}, false
	}
	sum := sha256.Sum256([]byte(token))
	found, at := 0, 0
	for i := range k.lines {
		eq := subtle.ConstantTimeCompare(sum[:], k.lines[i].hash[:])
		at = subtle.ConstantTimeSelect(eq, i, at)
		found |= eq
	}
	if found == 0 {
		return Caller{}, false
	}
	return k.lines[at].caller, true
}

// NewKey makes a fresh key: KeyPrefix and 32 bytes from crypto/rand in
// unpadded base64url, 47 characters that need no quoting in a header, a
// shell or an environment variable.
func NewKey() (string, error) {
	b := make([]byte, keyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new key: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashKey is what a key line holds for key: its SHA-256, in lowercase hex.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// KeyLine is the line that lets key in as caller, for the given types (none
// means any type). It checks the caller and the types as ParseKeys would, so
// the line it returns parses.
func KeyLine(caller, key string, types []string) (string, error) {
	if err := ValidateCaller(caller); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidKeys, err)
	}
	if key == "" {
		return "", fmt.Errorf("%w: the key is empty", ErrInvalidKeys)
	}
	for _, t := range types {
		if err := validateScopeType(t); err != nil {
			return "", fmt.Errorf("%w: %v", ErrInvalidKeys, err)
		}
	}
	line := caller + " " + HashKey(key)
	if len(types) > 0 {
		line += " " + strings.Join(types, ",")
	}
	return line, nil
}
