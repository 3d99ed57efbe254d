package main

import (
	"encoding/json"
	"math"
	"testing"
)

func TestMakeBody(t *testing.T) {
	t.Parallel()
	for _, size := range []int{minBody, 512, 4096} {
		for _, ts := range []int64{0, 1798500000123456789} {
			b := makeBody(size, ts)
			if len(b) != size {
				t.Errorf("makeBody(%d, %d): %d bytes", size, ts, len(b))
			}
			if !json.Valid(b) {
				t.Errorf("makeBody(%d, %d) is not JSON: %s", size, ts, b)
			}
			if got, ok := bodyTime(b); !ok || got != ts {
				t.Errorf("bodyTime(makeBody(%d, %d)) = %d, %v", size, ts, got, ok)
			}
		}
	}
	if _, ok := bodyTime([]byte(`{"payload":"x"}`)); ok {
		t.Error("bodyTime read a time from a body without one")
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(i + 1)
	}
	for _, tc := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {99.9, 100}, {100, 100}, {0, 1}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestPairedRatio(t *testing.T) {
	t.Parallel()
	a := &result{Samples: []sample{{Round: 1, Rate: 50}, {Round: 2, Rate: 90}, {Round: 3, Rate: 10, Error: "x"}}}
	b := &result{Samples: []sample{{Round: 1, Rate: 100}, {Round: 2, Rate: 100}, {Round: 3, Rate: 100}}}
	if got := pairedRatio(a, b, rate); math.Abs(got-0.7) > 1e-9 {
		t.Errorf("pairedRatio = %v, want 0.7 (rounds 1 and 2 only)", got)
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {15432.6, "15,433"}, {-1234, "-1,234"}, {math.NaN(), "—"}} {
		if got := thousands(tc.v); got != tc.want {
			t.Errorf("thousands(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	data, err := json.Marshal(map[string]num{"a": num(math.NaN()), "b": 1.5})
	if err != nil || string(data) != `{"a":null,"b":1.5}` {
		t.Errorf("num JSON = %s, %v", data, err)
	}
}
