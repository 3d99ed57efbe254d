package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
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

// ErrSecretFormat wraps every error of ParseSecret and ParseSecrets. The
// errors never quote the secret, not even in part.
var ErrSecretFormat = errors.New("webhook: invalid signing secret")

// Secret is an HMAC-SHA256 signing key. Its String and LogValue hide the
// key, so that a Secret printed or logged by mistake shows nothing.
type Secret struct {
	key []byte
}

// ParseSecret reads one secret in the whsec_<base64> form.
func ParseSecret(s string) (Secret, error) {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: must start with %s", ErrSecretFormat, SecretPrefix)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		// base64's error quotes a byte offset only, but say it in our words.
		return Secret{}, fmt.Errorf("%w: the part after %s is not standard base64 (with = padding)", ErrSecretFormat, SecretPrefix)
	}
	if len(key) < MinSecretLen || len(key) > MaxSecretLen {
		return Secret{}, fmt.Errorf("%w: the key is %d bytes, want %d to %d (e.g. %s$(openssl rand -base64 32))",
			ErrSecretFormat, len(key), MinSecretLen, MaxSecretLen, SecretPrefix)
	}
	return Secret{key: key}, nil
}

// ParseSecrets reads secrets separated by spaces, as WEBHOOK_SECRET holds
// them during a rotation: "whsec_new… whsec_old…". An empty or blank s is no
// secret (nil, nil): requests go unsigned. An error names the secret by its
// position only.
func ParseSecrets(s string) ([]Secret, error) {
	fields := strings.Fields(s)
	var out []Secret
	for i, f := range fields {
		sec, err := ParseSecret(f)
		if err != nil {
			if len(fields) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(fields), err)
		}
		out = append(out, sec)
	}
	return out, nil
}

// String hides the key.
func (s Secret) String() string { return SecretPrefix + "<hidden>" }

// GoString hides the key from %#v too.
func (s Secret) GoString() string { return "webhook.Secret{<hidden>}" }

// LogValue hides the key from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
