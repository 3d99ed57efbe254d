package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// The tests here run in a synctest bubble: time is fake and moves only when
// every goroutine waits, so "an hour without a confirm" takes no time and
// does not depend on the machine's speed.

// failedFile makes a failed log in a temporary file and returns it with a
// function that closes it and returns its events.
func failedFile(t *testing.T) (*failedLog, func() []event.Event) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "failed.ndjson")
	l, err := createFailed(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, func() []event.Event {
		n, err := l.close()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var evs []event.Event
		for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if line == "" {
				continue
			}
			ev, err := event.ParseInput([]byte(line))
			if err != nil {
				t.Fatalf("failed file line %d %q: %v", i+1, line, err)
			}
			evs = append(evs, ev)
		}
		if n != len(evs) {
			t.Errorf("close says %d events written, the file has %d", n, len(evs))
		}
		return evs
	}
}

func ids(evs []event.Event) string {
	var b []string
	for _, ev := range evs {
		b = append(b, ev.ID)
	}
	return strings.Join(b, ",")
}

func idRange(from, to int) string {
	var b []string
	for i := from; i < to; i++ {
		b = append(b, fmt.Sprintf("e-%d", i))
	}
	return strings.Join(b, ",")
}

// TestPublishLines_NackIsRetriedWithTheSameID: a nack is an answer from a
// broker in trouble, not a verdict on the event: it is sent again, same id.
func TestPublishLines_NackIsRetriedWithTheSameID(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		nacks := 0
		s := newFakeSender(func(ctx context.Context, ev event.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if ev.ID == "e-1" && nacks < 5 {
				nacks++
				return amqp.ErrNacked
			}
			return nil
		})
		var stderr bytes.Buffer
		got, err := publishLines(t.Context(), s, strings.NewReader(ndjson(3)), &stderr, opts(4, time.Minute))
		if err != nil || got != (publishStats{published: 3}) {
			t.Fatalf("got %+v, %v; want 3 published\n%s", got, err, stderr.String())
		}
		n := 0
		for _, ev := range s.calls() {
			if ev.Type == "T" && ev.ID == "e-1" {
				n++
			}
		}
		if n != 6 {
			t.Errorf("e-1 sent %d times, want 6 (5 nacks, then the confirm), always with its id", n)
		}
	})
}

// TestPublishLines_NackedForAWholeTimeoutFails: an event the broker keeps
// refusing fails after PUBLISH_TIMEOUT of retries, while the others go on.
func TestPublishLines_NackedForAWholeTimeoutFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// The others are confirmed one a second: the run makes progress.
		s := newFakeSender(func(ctx context.Context, ev event.Event) error {
			if ev.ID == "e-1" {
				return amqp.ErrNacked
			}
			time.Sleep(time.Second) // the confirm's latency (pacing, on the bubble's fake clock)
			return nil
		})
		failed, read := failedFile(t)
		var stderr bytes.Buffer
		o := opts(2, 10*time.Second)
		o.failed = failed
		got, err := publishLines(t.Context(), s, strings.NewReader(ndjson(30)), &stderr, o)
		if !errors.Is(err, errEventsFailed) || got != (publishStats{published: 29, failed: 1}) {
			t.Fatalf("got %+v, %v; want 29 published, 1 failed\n%s", got, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "line 2: event e-1 not published: amqp: broker nacked the message, again and again for PUBLISH_TIMEOUT (10s)") {
			t.Errorf("stderr:\n%s", stderr.String())
		}
		if got := ids(read()); got != "e-1" {
			t.Errorf("failed file holds %q, want e-1", got)
		}
	})
}

// TestPublishLines_OutageShorterThanTheTimeout: the broker is away for 50s
// and the timeout is a minute: nothing fails, however long each event waited.
func TestPublishLines_OutageShorterThanTheTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		back := make(chan struct{})
		time.AfterFunc(50*time.Second, func() { close(back) })
		s := newFakeSender(func(ctx context.Context, ev event.Event) error {
			select {
			case <-back:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		var stderr bytes.Buffer
		got, err := publishLines(t.Context(), s, strings.NewReader(ndjson(100)), &stderr, opts(8, time.Minute))
		if err != nil || got != (publishStats{published: 100}) {
			t.Fatalf("got %+v, %v; want 100 published\n%s", got, err, stderr.String())
		}
	})
}

// TestPublishLines_SlowEventIsNotAStall: one event waits three timeouts for
// its confirm while the others are confirmed every half timeout: the run
// makes progress, so the slow event is not given up.
func TestPublishLines_SlowEventIsNotAStall(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const timeout = 10 * time.Second
		s := newFakeSender(func(ctx context.Context, ev event.Event) error {
			d := timeout / 2
			if ev.ID == "e-0" {
				d = 3 * timeout
			}
			select {
			case <-time.After(d):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		var stderr bytes.Buffer
		got, err := publishLines(t.Context(), s, strings.NewReader(ndjson(10)), &stderr, opts(2, timeout))
		if err != nil || got != (publishStats{published: 10}) {
			t.Fatalf("got %+v, %v; want 10 published\n%s", got, err, stderr.String())
		}
	})
}

// TestPublishLines_StallFailsTheRestIntoTheFailedFile: after PUBLISH_TIMEOUT
// without a confirm the run gives up: the events in flight fail, the rest
// are not sent, and all of them are in the failed file in input order, with
// the ids they were (or would have been) published under.
func TestPublishLines_StallFailsTheRestIntoTheFailedFile(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		confirmed := map[string]bool{}
		s := newFakeSender(func(ctx context.Context, ev event.Event) error {
			// Events 0-4 and 6 are confirmed (6 before 5: out of order),
			// then the broker goes silent.
			var n int
			fmt.Sscanf(ev.ID, "e-%d", &n)
			if n < 5 || n == 6 {
				if n == 6 {
					time.Sleep(time.Second) // the confirm's latency (fake clock); 5 never gets one
				}
				mu.Lock()
				confirmed[ev.ID] = true
				mu.Unlock()
				return nil
			}
			<-ctx.Done()
			return fmt.Errorf("message %s not confirmed: %w", ev.ID, ctx.Err())
		})
		failed, read := failedFile(t)
		var stderr bytes.Buffer
		o := opts(4, 3*time.Second)
		o.failed = failed
		start := time.Now()
		got, err := publishLines(t.Context(), s, strings.NewReader(ndjson(20)), &stderr, o)
		if took := time.Since(start); took < 4*time.Second || took > 5*time.Second {
			t.Errorf("gave up after %v, want PUBLISH_TIMEOUT (3s) after the last confirm (1s)", took)
		}
		if !errors.Is(err, errEventsFailed) || !errors.Is(err, errNoProgress) {
			t.Errorf("err %v, want errEventsFailed and errNoProgress", err)
		}
		if got != (publishStats{published: 6, failed: 14}) {
			t.Errorf("stats %+v, want 6 published, 14 failed", got)
		}
		if !strings.Contains(stderr.String(), "not sent, nor any later event: no confirm within PUBLISH_TIMEOUT (3s)") {
			t.Errorf("stderr does not say why sending stopped:\n%s", stderr.String())
		}
		want := "e-5," + idRange(7, 20)
		if got := ids(read()); got != want {
			t.Errorf("failed file ids\n%s\nwant\n%s", got, want)
		}
	})
}

// TestPublishLines_Deadline: PUBLISH_DEADLINE ends a run that is making
// progress; what is not confirmed by then is in the failed file.
func TestPublishLines_Deadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newFakeSender(func(ctx context.Context, ev event.Event) error {
			select {
			case <-time.After(time.Second):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		failed, read := failedFile(t)
		o := opts(1, time.Minute)
		o.deadline = 5*time.Second + time.Second/2
		o.failed = failed
		got, err := publishLines(t.Context(), s, strings.NewReader(ndjson(10)), io.Discard, o)
		if !errors.Is(err, errDeadline) || got != (publishStats{published: 5, failed: 5}) {
			t.Fatalf("got %+v, %v; want 5 published, 5 failed by PUBLISH_DEADLINE", got, err)
		}
		if got := ids(read()); got != idRange(5, 10) {
			t.Errorf("failed file holds %s, want %s", got, idRange(5, 10))
		}
	})
}

// TestFailedLog_Format: the failed file is input NDJSON: the id given or
// generated, type, aggregate id, and the data exactly as read.
func TestFailedLog_Format(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newFakeSender(func(ctx context.Context, ev event.Event) error { return amqp.ErrClosed })
		path := filepath.Join(t.TempDir(), "failed.ndjson")
		failed, err := createFailed(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		input := `{"type":"A","data":{"b": [1, 2],  "s":"<é>"}}` + "\n" +
			`not json` + "\n" +
			`{"type":"B","id":"x\"y","aggregate_id":"agg-1"}` + "\n"
		o := opts(1, time.Minute)
		o.failed = failed
		got, _ := publishLines(t.Context(), s, strings.NewReader(input), io.Discard, o)
		if got != (publishStats{failed: 3}) {
			t.Errorf("stats %+v, want 3 failed", got)
		}
		if _, err := failed.close(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		calls := s.calls()
		if len(lines) != 2 || len(calls) != 2 {
			t.Fatalf("failed file (want 2 lines, the invalid one left out; %d sent):\n%s", len(calls), b)
		}
		want0 := `{"id":"` + calls[0].ID + `","type":"A","data":{"b": [1, 2],  "s":"<é>"}}`
		if lines[0] != want0 {
			t.Errorf("line 1\n%s\nwant\n%s", lines[0], want0)
		}
		if want := `{"id":"x\"y","type":"B","aggregate_id":"agg-1","data":{}}`; lines[1] != want {
			t.Errorf("line 2\n%s\nwant\n%s", lines[1], want)
		}
	})
}

// TestPublishLines_InterruptedWritesTheRest: after a signal, events in flight
// still get their confirm, and with a regular file the rest of it is read
// into the failed file; a second signal gives up on the events in flight.
func TestPublishLines_InterruptedWritesTheRest(t *testing.T) {
	t.Parallel()
	for _, second := range []bool{false, true} {
		t.Run(fmt.Sprintf("second signal %v", second), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				abandon := make(chan struct{})
				if second {
					go func() {
						<-ctx.Done()
						time.Sleep(100 * time.Millisecond) // the fault: the second signal, 100 ms (fake) after the first
						close(abandon)
					}()
				}
				var s *fakeSender
				s = newFakeSender(func(pctx context.Context, ev event.Event) error {
					if len(s.calls()) == 4 {
						cancel() // the signal, while the whole window is in flight
					}
					select {
					case <-time.After(time.Second):
						return nil
					case <-pctx.Done():
						return pctx.Err()
					}
				})
				failed, read := failedFile(t)
				var stderr bytes.Buffer
				o := opts(4, time.Minute)
				o.failed, o.readRest, o.abandon = failed, true, abandon
				got, err := publishLines(ctx, s, strings.NewReader(ndjson(10)), &stderr, o)
				if !errors.Is(err, errInterrupted) {
					t.Errorf("err %v, want errInterrupted", err)
				}
				want, wantStats := idRange(4, 10), publishStats{published: 4, failed: 6}
				if second {
					want, wantStats = idRange(0, 10), publishStats{failed: 10}
				}
				if got != wantStats {
					t.Errorf("stats %+v, want %+v\n%s", got, wantStats, stderr.String())
				}
				if got := ids(read()); got != want {
					t.Errorf("failed file holds %s, want %s", got, want)
				}
				if !strings.Contains(stderr.String(), "interrupt again to give up on them") {
					t.Errorf("stderr does not say how to stop at once:\n%s", stderr.String())
				}
			})
		})
	}
}
