package lifecycle

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/retry"
)

var fast = retry.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}

type event struct {
	kind    string // "connect-failed", "lost", "serve"
	gen     uint64
	attempt int
}

func TestLoop_ReconnectsUntilQuit(t *testing.T) {
	t.Parallel()
	quit := make(chan struct{})
	var mu sync.Mutex
	var got []event
	note := func(e event) { mu.Lock(); got = append(got, e); mu.Unlock() }
	refused := errors.New("connection refused")
	err := Loop[uint64]{
		Backoff: fast,
		Quit:    quit,
		Connect: func(gen uint64) (uint64, error) {
			if gen == 1 || gen == 2 {
				return 0, refused
			}
			return gen, nil
		},
		Serve: func(s, gen uint64, attempt int) error {
			note(event{"serve", gen, attempt})
			if gen == 4 {
				close(quit) // the owner stops while session 4 runs
			}
			return errors.New("connection reset")
		},
		Failed: func(err error, lost bool, gen uint64, attempt int) {
			kind := "connect-failed"
			if lost {
				kind = "lost"
			}
			note(event{kind, gen, attempt})
		},
	}.Run()
	if err != nil {
		t.Fatalf("Run = %v, want nil after Quit", err)
	}
	want := []event{
		{"connect-failed", 1, 1}, {"connect-failed", 2, 2},
		{"serve", 3, 2}, {"lost", 3, 3}, // short: the count goes on, not back to 1
		{"serve", 4, 3},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
}

func TestLoop_FatalEndsIt(t *testing.T) {
	t.Parallel()
	mismatch := errors.New("topology mismatch")
	calls := 0
	err := Loop[int]{
		Backoff: fast,
		Quit:    make(chan struct{}),
		Connect: func(uint64) (int, error) { calls++; return 0, mismatch },
		Fatal:   func(err error) bool { return errors.Is(err, mismatch) },
		Serve:   func(int, uint64, int) error { t.Fatal("served without a session"); return nil },
	}.Run()
	if !errors.Is(err, mismatch) || calls != 1 {
		t.Fatalf("Run = %v after %d connects, want the fatal error after 1", err, calls)
	}
}

// A session that ends with an error Fatal names ends the loop too (a
// publish the broker refused, for a Publisher with StopOnRefusal).
func TestLoop_FatalSessionEndEndsIt(t *testing.T) {
	t.Parallel()
	refused := errors.New("access refused")
	connects, failed := 0, 0
	err := Loop[int]{
		Backoff: fast,
		Quit:    make(chan struct{}),
		Connect: func(uint64) (int, error) { connects++; return 0, nil },
		Fatal:   func(err error) bool { return errors.Is(err, refused) },
		Serve:   func(int, uint64, int) error { return refused },
		Failed:  func(error, bool, uint64, int) { failed++ },
	}.Run()
	if !errors.Is(err, refused) || connects != 1 || failed != 0 {
		t.Fatalf("Run = %v after %d connects and %d failures told, want the fatal error after 1 and none", err, connects, failed)
	}
}

func TestLoop_QuitDuringBackoff(t *testing.T) {
	t.Parallel()
	quit := make(chan struct{})
	done := make(chan error, 1)
	failed := make(chan struct{}, 1)
	go func() {
		done <- Loop[int]{
			Backoff: retry.Backoff{Min: time.Hour, Max: time.Hour},
			Quit:    quit,
			Connect: func(uint64) (int, error) { return 0, errors.New("refused") },
			Serve:   func(int, uint64, int) error { return nil },
			Failed:  func(error, bool, uint64, int) { failed <- struct{}{} },
		}.Run()
	}()
	<-failed // now in an hour-long backoff
	close(quit)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// With several addresses each is tried once, without waiting, before the
// loop backs off; a round that fails backs off once, as one attempt does.
func TestLoop_TriesEachAddressBeforeBackingOff(t *testing.T) {
	t.Parallel()
	const wait = 300 * time.Millisecond
	quit := make(chan struct{})
	var at []time.Time
	err := Loop[uint64]{
		Backoff:   retry.Backoff{Min: wait, Max: wait},
		Addresses: 3,
		Quit:      quit,
		Connect: func(gen uint64) (uint64, error) {
			at = append(at, time.Now())
			if gen == 7 {
				return gen, nil
			}
			return 0, errors.New("connection refused")
		},
		Serve: func(uint64, uint64, int) error { close(quit); return nil },
	}.Run()
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if len(at) != 7 {
		t.Fatalf("%d connects, want 7", len(at))
	}
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		// Attempts 1–3 and 4–6 are rounds; a backoff comes after each.
		if backoff := i%3 == 0; backoff != (gap >= wait) {
			t.Errorf("gap before attempt %d: %v; want a backoff (%v) only after a round of 3", i+1, gap, wait)
		}
	}
}
