package retry

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestPolicyNext(t *testing.T) {
	t.Parallel()
	p := Policy{Delays: []time.Duration{time.Second, 10 * time.Second}, MaxAttempts: 5}
	tests := []struct {
		attempt int
		delay   time.Duration
		dead    bool
	}{
		{1, time.Second, false},
		{2, 10 * time.Second, false},
		{3, 10 * time.Second, false}, // the last delay repeats
		{4, 10 * time.Second, false},
		{5, 0, true},
		{9, 0, true},
	}
	for _, tt := range tests {
		d, dead := p.Next(tt.attempt)
		if d != tt.delay || dead != tt.dead {
			t.Errorf("Next(%d) = %v, %v; want %v, %v", tt.attempt, d, dead, tt.delay, tt.dead)
		}
	}
	if got := p.Stages(); !slices.Equal(got, p.Delays) {
		t.Errorf("Stages() = %v, want %v", got, p.Delays)
	}
	one := Policy{Delays: []time.Duration{time.Second}, MaxAttempts: 1}
	if _, dead := one.Next(1); !dead {
		t.Error("MaxAttempts 1 must dead-letter after the first attempt")
	}
	if got := one.Stages(); len(got) != 0 {
		t.Errorf("MaxAttempts 1 needs no stages, got %v", got)
	}
	short := Policy{Delays: DefaultDelays, MaxAttempts: 3}
	if got := short.Stages(); !slices.Equal(got, DefaultDelays[:2]) {
		t.Errorf("Stages() with 3 attempts = %v, want the first two delays", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	if err := (Policy{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, p := range []Policy{
		{Delays: []time.Duration{time.Second}, MaxAttempts: 0},
		{Delays: []time.Duration{time.Millisecond}, MaxAttempts: 2},
		{Delays: []time.Duration{15*time.Millisecond + 500*time.Microsecond}, MaxAttempts: 2},
	} {
		if err := p.Validate(); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidPolicy", p, err)
		}
	}
}

func TestParseDelays(t *testing.T) {
	t.Parallel()
	got, err := ParseDelays("1s, 10s,1m,5m")
	if err != nil || !slices.Equal(got, DefaultDelays) {
		t.Fatalf("ParseDelays = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1s,,2s", "ten", "1s,x"} {
		if _, err := ParseDelays(bad); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("ParseDelays(%q) = %v, want ErrInvalidPolicy", bad, err)
		}
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad input")
	p := Permanent(base)
	if !IsPermanent(p) || !errors.Is(p, base) {
		t.Fatal("Permanent error must be permanent and wrap its cause")
	}
	if !IsPermanent(fmt.Errorf("handler: %w", p)) {
		t.Fatal("a wrapped permanent error must stay permanent")
	}
	if IsPermanent(base) || Permanent(nil) != nil {
		t.Fatal("plain errors are not permanent; Permanent(nil) is nil")
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for n := range 10 {
		for range 100 {
			d := b.Delay(n)
			if d < b.Min || d > b.Max {
				t.Fatalf("Delay(%d) = %v outside [%v, %v]", n, d, b.Min, b.Max)
			}
		}
	}
}
