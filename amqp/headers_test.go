package amqp

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTruncateError(t *testing.T) {
	t.Parallel()
	if got := TruncateError("short"); got != "short" {
		t.Fatalf("short message changed: %q", got)
	}
	long := strings.Repeat("é", MaxErrorLen) // 2 bytes each
	got := TruncateError(long)
	if len(got) > MaxErrorLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("TruncateError: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}

func TestMarkDead_KeepsFirstFailure(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := MarkFailed(nil, "boom", t0)
	h = MarkDead(h, ReasonExhausted, "billing", "boom again", t0.Add(time.Hour))
	if h[HeaderFirstFailure] != t0.Format(time.RFC3339Nano) {
		t.Errorf("first failure overwritten: %v", h[HeaderFirstFailure])
	}
	if h[HeaderLastError] != "boom again" || h[HeaderReason] != "exhausted" || h[HeaderApp] != "billing" {
		t.Errorf("headers = %v", h)
	}
}
