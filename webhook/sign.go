package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eventfleet/eventfleet/event"
)

// Standard Webhooks headers, sent when Config.Secrets is set. Go writes
// them canonicalized (Webhook-Id); HTTP header names are case-insensitive.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// signatureVersion marks an HMAC-SHA256 signature ("v1,<base64>").
const signatureVersion = "v1"

// MessageID is the webhook-id of ev: its source and id, each
// percent-encoded, joined by ":" ("catalog:0190c0de-…"), or the encoded id
// alone when ev has no source. It is stable across retries, and unique
// where the event id alone is not: publishers choose ids, so two callers
// can send the same one, and the pair is what identifies an event. The
// encoding keeps only A-Z a-z 0-9 - _ ~ as they are; everything else,
// "." and ":" included, becomes %XX. So the id never holds the "." that
// separates the signed parts (Standard Webhooks forbids it: "a.1.b" could
// be split two ways), one string never stands for two pairs, and the
// header is valid whatever a foreign publisher put in its ids.
func MessageID(ev event.Event) string {
	if ev.Source == "" {
		return escapeID(ev.ID)
	}
	return escapeID(ev.Source) + ":" + escapeID(ev.ID)
}

func escapeID(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// Sign returns the webhook-signature value for a request with this id,
// timestamp and body: one "v1,<base64 HMAC-SHA256>" per secret, in the
// order given, separated by spaces. The signed content is
// "<id>.<unix seconds>.<body>", body byte for byte as sent.
func Sign(secrets []Secret, id string, ts time.Time, body []byte) string {
	unix := strconv.FormatInt(ts.Unix(), 10)
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = signatureVersion + "," + base64.StdEncoding.EncodeToString(mac(s, id, unix, body))
	}
	return strings.Join(sigs, " ")
}

// mac is the HMAC-SHA256 of the signed content, with the timestamp as the
// header writes it.
func mac(s Secret, id, unix string, body []byte) []byte {
	h := hmac.New(sha256.New, s.key())
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(unix))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// signHeader sets the three Standard Webhooks headers on h.
func signHeader(h http.Header, secrets []Secret, id string, ts time.Time, body []byte) {
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderWebhookSignature, Sign(secrets, id, ts, body))
}
