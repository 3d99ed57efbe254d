package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// SecretPrefix starts every signing secret, as Standard Webhooks writes
// them: "whsec_" followed by the key bytes in standard base64.
const SecretPrefix = "whsec_"

// Key sizes Standard Webhooks allows for HMAC-SHA256 secrets: at least 192
// bits, at most 512.
const (
	MinSecretLen = 24
	MaxSecretLen = 64
)

// ErrSecretFormat is what every error of ParseSecret and ParseSecrets is
// (see SecretError).
var ErrSecretFormat = errors.New("webhook: invalid signing secret")

// Secret is an HMAC-SHA256 signing key. It prints and logs as
// "whsec_<hidden>" with every verb, and the key sits behind a pointer, so a
// struct holding Secrets printed with %+v shows an address, not the bytes
// (fmt cannot call the methods of an unexported field).
type Secret struct {
	k *secretKey
}

type secretKey struct{ b []byte }

func newSecret(key []byte) Secret { return Secret{k: &secretKey{b: key}} }

// key is the HMAC key; nil for the zero Secret.
func (s Secret) key() []byte {
	if s.k == nil {
		return nil
	}
	return s.k.b
}

// SecretError is a secret ParseSecret or ParseSecrets refuses. It never
// holds the secret, not even in part. errors.Is(err, ErrSecretFormat)
// holds.
type SecretError struct {
	N, Of  int    // the secret's position in ParseSecrets' list, 1-based, and the list's length; 0 from ParseSecret
	Reason string // what is wrong, e.g. "must start with whsec_"
}

func (e *SecretError) Error() string {
	if e.Of > 1 {
		return fmt.Sprintf("%v %d of %d: %s", ErrSecretFormat, e.N, e.Of, e.Reason)
	}
	return fmt.Sprintf("%v: %s", ErrSecretFormat, e.Reason)
}

func (e *SecretError) Is(target error) bool { return target == ErrSecretFormat }

// ParseSecret reads one secret in the whsec_<base64> form.
func ParseSecret(s string) (Secret, error) {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, &SecretError{Reason: "must start with " + SecretPrefix}
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return Secret{}, &SecretError{Reason: "the part after " + SecretPrefix + " is not standard base64 (with = padding)"}
	}
	if len(key) < MinSecretLen || len(key) > MaxSecretLen {
		return Secret{}, &SecretError{Reason: fmt.Sprintf("the key is %d bytes, want %d to %d (e.g. %s$(openssl rand -base64 32))",
			len(key), MinSecretLen, MaxSecretLen, SecretPrefix)}
	}
	return newSecret(key), nil
}

// ParseSecrets reads secrets separated by spaces, as WEBHOOK_SECRET holds
// them during a rotation: "whsec_new… whsec_old…". An empty or blank s is no
// secret (nil, nil): requests go unsigned. An error is a *SecretError that
// names the secret by its position.
func ParseSecrets(s string) ([]Secret, error) {
	fields := strings.Fields(s)
	var out []Secret
	for i, f := range fields {
		sec, err := ParseSecret(f)
		if err != nil {
			se := err.(*SecretError)
			se.N, se.Of = i+1, len(fields)
			return nil, se
		}
		out = append(out, sec)
	}
	return out, nil
}

// String hides the key.
func (s Secret) String() string { return SecretPrefix + "<hidden>" }

// GoString hides the key from %#v too.
func (s Secret) GoString() string { return "webhook.Secret{<hidden>}" }

// Format hides the key from every verb (%d and %x too).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// LogValue hides the key from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
