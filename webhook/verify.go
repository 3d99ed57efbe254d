package webhook

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a request's webhook-timestamp may be from the
// receiver's clock, either way, when Verifier.Tolerance is zero. Standard
// Webhooks recommends 5 minutes.
const DefaultTolerance = 5 * time.Minute

// Verification errors. A receiver answers each of them with 401 (which the
// worker treats as permanent: the event is dead-lettered, and can be
// replayed once the secrets agree).
var (
	// ErrNoSecret: Verify was given no secret; nothing can be checked.
	ErrNoSecret = errors.New("webhook: no secret to verify with")
	// ErrNoSignature: webhook-id, webhook-timestamp or webhook-signature is
	// missing (an unsigned request).
	ErrNoSignature = errors.New("webhook: request is not signed")
	// ErrBadSignature: no v1 signature in webhook-signature matches any of
	// the secrets for this id, timestamp and body.
	ErrBadSignature = errors.New("webhook: no signature matches")
	// ErrTimestamp: webhook-timestamp is not unix seconds, or is further
	// from now than the tolerance (a replay, or a clock that is off). Only
	// a request whose signature matched gets this error.
	ErrTimestamp = errors.New("webhook: timestamp out of tolerance")
)

// Verifier checks Standard Webhooks signatures, as a receiver does.
type Verifier struct {
	// Secrets are the keys to accept; a signature made with any of them
	// verifies (rotation). Required.
	Secrets []Secret
	// Tolerance bounds |now - webhook-timestamp|. Zero or negative means
	// DefaultTolerance (5 minutes): there is no way to turn the check off,
	// which is what makes a captured request useless for a replay later.
	Tolerance time.Duration
}

// Verify is Verifier{Secrets: secrets}.Verify: the default tolerance.
func Verify(secrets []Secret, header http.Header, body []byte, now time.Time) error {
	return Verifier{Secrets: secrets}.Verify(header, body, now)
}

// Verify reports whether header and body are a request signed with one of
// v.Secrets, at a time within the tolerance of now. body must be the raw
// bytes received, before any JSON decoding. The comparison takes the same
// time whichever byte differs. The signature is checked before the
// timestamp, so that ErrTimestamp means a genuine request that is late
// (or a clock that is off), never a forgery.
func (v Verifier) Verify(header http.Header, body []byte, now time.Time) error {
	if len(v.Secrets) == 0 {
		return ErrNoSecret
	}
	id := header.Get(HeaderWebhookID)
	unix := header.Get(HeaderWebhookTimestamp)
	sigs := strings.Fields(strings.Join(header.Values(HeaderWebhookSignature), " "))
	var missing []string
	for _, h := range []struct{ name, value string }{
		{HeaderWebhookID, id}, {HeaderWebhookTimestamp, unix}, {HeaderWebhookSignature, strings.Join(sigs, "")},
	} {
		if h.value == "" {
			missing = append(missing, h.name)
		}
	}
	if missing != nil {
		return fmt.Errorf("%w: no %s header", ErrNoSignature, strings.Join(missing, ", "))
	}
	// The signature first, over the header's text as received: a forger
	// learns nothing from the timestamp checks.
	if !v.matches(sigs, id, unix, body) {
		return ErrBadSignature
	}
	ts, ok := parseUnix(unix)
	if !ok {
		return fmt.Errorf("%w: %s is not unix seconds", ErrTimestamp, HeaderWebhookTimestamp)
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	switch d := now.Sub(ts); {
	case d > tol:
		return fmt.Errorf("%w: signed %v ago, tolerance %v", ErrTimestamp, d.Truncate(time.Second), tol)
	case d < -tol:
		return fmt.Errorf("%w: signed %v in the future, tolerance %v", ErrTimestamp, (-d).Truncate(time.Second), tol)
	}
	return nil
}

// matches compares every v1 signature with every secret's MAC; other
// versions (v1a, future ones) are skipped, as the spec lets a sender list
// several.
func (v Verifier) matches(sigs []string, id, unix string, body []byte) bool {
	want := make([][]byte, len(v.Secrets))
	for i, s := range v.Secrets {
		want[i] = []byte(base64.StdEncoding.EncodeToString(mac(s, id, unix, body)))
	}
	ok := false
	for _, sig := range sigs {
		version, value, found := strings.Cut(sig, ",")
		if !found || version != signatureVersion {
			continue
		}
		for _, w := range want {
			// No early return: the time taken does not tell which matched.
			if hmac.Equal([]byte(value), w) {
				ok = true
			}
		}
	}
	return ok
}

// parseUnix reads decimal unix seconds: digits only, as Sign writes them,
// since the signature covers the header's text, not its number.
func parseUnix(s string) (time.Time, bool) {
	if s == "" || len(s) > 18 || strings.TrimLeft(s, "0123456789") != "" {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}
