package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// fakeSender stands in for *amqp.Publisher in publishLines.
type fakeSender struct {
	publish      func(ctx context.Context, ev event.Event) error // nil: confirm at once
	disconnected bool
	lastErr      error // LastError while disconnected
	done         chan struct{}
	err          error

	mu  sync.Mutex
	got []event.Event
}

func newFakeSender(publish func(ctx context.Context, ev event.Event) error) *fakeSender {
	return &fakeSender{publish: publish, done: make(chan struct{})}
}

func (f *fakeSender) Publish(ctx context.Context, ev event.Event) error {
	f.mu.Lock()
	f.got = append(f.got, ev)
	f.mu.Unlock()
	if f.publish == nil {
		return nil
	}
	return f.publish(ctx, ev)
}

func (f *fakeSender) Connected() bool       { return !f.disconnected }
func (f *fakeSender) LastError() error      { return f.lastErr }
func (f *fakeSender) Done() <-chan struct{} { return f.done }
func (f *fakeSender) Err() error            { return f.err }

func (f *fakeSender) calls() []event.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]event.Event(nil), f.got...)
}

func opts(window int, timeout time.Duration) publishOptions {
	return publishOptions{window: window, timeout: timeout, maxLine: maxLineBytes}
}

func TestPublishLines(t *testing.T) {
	t.Parallel()
	refuse := func(ctx context.Context, ev event.Event) error {
		if ev.Type == "Refused" {
			return fmt.Errorf("%w: test", amqp.ErrHeadersTooLarge) // not worth retrying
		}
		return nil
	}
	tests := []struct {
		name       string
		input      string
		maxLine    int
		publish    func(ctx context.Context, ev event.Event) error
		want       publishStats
		wantTypes  []string // published, in any order
		wantStderr []string // each must appear on its own line start
		wantErr    error
	}{
		{name: "empty input", input: "", want: publishStats{}},
		{name: "blank lines, CRLF and no final newline",
			input:     "{\"type\":\"A\"}\r\n\n   \n\t\r\n{\"type\":\"B\",\"data\":{\"x\":1}}",
			want:      publishStats{published: 2},
			wantTypes: []string{"A", "B"}},
		{name: "invalid lines are numbered and the rest published",
			input: strings.Join([]string{
				`{"type":"A"}`,
				`{bad`,
				`{"type":""}`,
				``,
				`{"type":"A","agregate_id":"x"}`,
				`{"type":"A"}}`,
				`{"type":"Card.*"}`,
				`[{"type":"A"}]`,
				`{"type":"C","aggregate_id":"g","id":"i-1","data":{"n":2}}`,
			}, "\n") + "\n",
			want:      publishStats{published: 2, failed: 6},
			wantTypes: []string{"A", "C"},
			wantStderr: []string{
				"line 2: invalid JSON: ",
				"line 3: event type is missing",
				`line 5: invalid JSON: json: unknown field "agregate_id"`,
				"line 6: invalid JSON: invalid character '}' after top-level value",
				`line 7: invalid event type "Card.*"`,
				"line 8: invalid JSON: ",
			},
			wantErr: errEventsFailed},
		{name: "too long line is skipped, reading goes on",
			input:      `{"type":"A"}` + "\n" + `{"type":"B","data":"0123456789"}` + "\n" + `{"type":"C"}`,
			maxLine:    20,
			want:       publishStats{published: 2, failed: 1},
			wantTypes:  []string{"A", "C"},
			wantStderr: []string{"line 2: line too long: longer than 20 bytes"},
			wantErr:    errEventsFailed},
		{name: "unconfirmed events are numbered",
			input:      "{\"type\":\"A\"}\n{\"type\":\"Refused\",\"id\":\"n-1\"}\n{\"type\":\"B\"}\n",
			publish:    refuse,
			want:       publishStats{published: 2, failed: 1},
			wantTypes:  []string{"A", "Refused", "B"},
			wantStderr: []string{"line 2: event n-1 not published: amqp: message headers too large: test"},
			wantErr:    errEventsFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newFakeSender(tt.publish)
			o := opts(4, time.Minute)
			if tt.maxLine > 0 {
				o.maxLine = tt.maxLine
			}
			var stderr bytes.Buffer
			got, err := publishLines(context.Background(), s, strings.NewReader(tt.input), &stderr, o)
			if got != tt.want {
				t.Errorf("stats %+v, want %+v", got, tt.want)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err %v, want %v", err, tt.wantErr)
			}
			var types []string
			for _, ev := range s.calls() {
				types = append(types, ev.Type)
			}
			if !sameSet(types, tt.wantTypes) {
				t.Errorf("published types %v, want %v", types, tt.wantTypes)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if stderr.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.wantStderr) {
				t.Errorf("stderr has %d lines, want %d:\n%s", len(lines), len(tt.wantStderr), stderr.String())
			}
			for _, w := range tt.wantStderr {
				if !hasLinePrefix(lines, w) {
					t.Errorf("stderr lacks a line starting %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func hasLinePrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func ndjson(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"T","id":"e-%d"}`+"\n", i)
	}
	return b.String()
}

// TestPublishLines_Pipelined fails if each confirm is awaited before the next
// send: the fake confirms nothing until window events are in flight at once.
func TestPublishLines_Pipelined(t *testing.T) {
	t.Parallel()
	const window = 4
	var mu sync.Mutex
	inFlight, most := 0, 0
	full := make(chan struct{})
	var openOnce sync.Once
	s := newFakeSender(func(ctx context.Context, ev event.Event) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		if inFlight == window {
			openOnce.Do(func() { close(full) })
		}
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		select {
		case <-full:
			return nil
		case <-ctx.Done():
			// Not pipelined: let the others through so the test fails
			// now rather than after a timeout per event.
			openOnce.Do(func() { close(full) })
			return ctx.Err()
		}
	})
	var stderr bytes.Buffer
	got, err := publishLines(context.Background(), s, strings.NewReader(ndjson(40)), &stderr, opts(window, 5*time.Second))
	if err != nil || got != (publishStats{published: 40}) {
		t.Fatalf("got %+v, %v; want 40 published (never %d in flight at once?)\n%s", got, err, window, stderr.String())
	}
	if most != window {
		t.Errorf("at most %d events in flight, want exactly the window %d", most, window)
	}
}

// TestPublishLines_BrokerUnreachable: once an event waited a whole timeout
// without a connection, the rest are not sent but counted as failed.
func TestPublishLines_BrokerUnreachable(t *testing.T) {
	t.Parallel()
	s := newFakeSender(func(ctx context.Context, ev event.Event) error {
		<-ctx.Done()
		return fmt.Errorf("no broker connection: %w", ctx.Err())
	})
	s.disconnected = true
	var stderr bytes.Buffer
	got, err := publishLines(context.Background(), s, strings.NewReader(ndjson(10)), &stderr, opts(2, 20*time.Millisecond))
	if want := (publishStats{failed: 10}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if !errors.Is(err, errEventsFailed) {
		t.Errorf("err %v, want errEventsFailed", err)
	}
	if n := len(s.calls()); n != 2 {
		t.Errorf("%d events sent, want 2 (the first window only)", n)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if !hasLinePrefix(lines, "line 3: not sent, nor any later event: no broker connection within PUBLISH_TIMEOUT (20ms)") {
		t.Errorf("stderr does not say where sending stopped:\n%s", stderr.String())
	}
	if len(lines) != 3 {
		t.Errorf("stderr has %d lines, want 3 (two failures, one halt):\n%s", len(lines), stderr.String())
	}
}

// TestPublishLines_BrokerUnreachableSaysWhy: the give-up names why the
// last connect failed, such as a broker that never answers the handshake.
func TestPublishLines_BrokerUnreachableSaysWhy(t *testing.T) {
	t.Parallel()
	s := newFakeSender(func(ctx context.Context, ev event.Event) error {
		<-ctx.Done()
		return fmt.Errorf("no broker connection: %w", ctx.Err())
	})
	s.disconnected = true
	s.lastErr = fmt.Errorf("connect to amqp://guest:xxxxx@broker/: AMQP handshake: %w", amqp.ErrHandshakeTimeout)
	var stderr bytes.Buffer
	_, err := publishLines(context.Background(), s, strings.NewReader(ndjson(3)), &stderr, opts(1, 20*time.Millisecond))
	if !errors.Is(err, errEventsFailed) {
		t.Errorf("err %v, want errEventsFailed", err)
	}
	want := "no broker connection within PUBLISH_TIMEOUT (20ms): connect to amqp://guest:xxxxx@broker/: AMQP handshake: " +
		amqp.ErrHandshakeTimeout.Error()
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say why:\n%s\nwant %q", stderr.String(), want)
	}
}

func TestPublishLines_FatalPublisherError(t *testing.T) {
	t.Parallel()
	s := newFakeSender(nil)
	s.err = fmt.Errorf("%w: exchange %q ...", amqp.ErrTopologyMismatch, "x")
	close(s.done)
	s.publish = func(ctx context.Context, ev event.Event) error { return s.err }
	got, err := publishLines(context.Background(), s, strings.NewReader(ndjson(5)), io.Discard, opts(1, time.Minute))
	if !errors.Is(err, amqp.ErrTopologyMismatch) {
		t.Errorf("err %v, want ErrTopologyMismatch", err)
	}
	if want := (publishStats{failed: 5}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if n := len(s.calls()); n > 1 {
		t.Errorf("%d events sent after a fatal error, want at most 1", n)
	}
}

// TestPublishLines_Interrupted: a signal stops the reading even while a read
// blocks, and events already in flight keep their own deadline: they are not
// abandoned just before their confirm.
func TestPublishLines_Interrupted(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pw.Close() // ends the abandoned reader goroutine
	release := make(chan struct{})
	inFlight := make(chan struct{}, 2) // one send per event being published
	s := newFakeSender(func(ctx context.Context, ev event.Event) error {
		inFlight <- struct{}{}
		<-release
		return ctx.Err() // a confirm that arrives after the signal
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.WriteString(pw, ndjson(2))
		<-inFlight
		<-inFlight
		cancel() // the reader now blocks on the pipe, both events are in flight
		close(release)
	}()
	got, err := publishLines(ctx, s, pr, io.Discard, opts(4, time.Minute))
	if !errors.Is(err, errInterrupted) || !strings.Contains(err.Error(), "after line 2") {
		t.Errorf("err %v, want errInterrupted after line 2", err)
	}
	if want := (publishStats{published: 2}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestLineReader(t *testing.T) {
	t.Parallel()
	type result struct {
		n    int
		text string
		long bool
	}
	tests := []struct {
		name  string
		input string
		max   int
		want  []result
	}{
		{"empty", "", 20, nil},
		{"one line, no newline", "abc", 20, []result{{1, "abc", false}}},
		{"blank lines kept for numbering", "a\n\nb\n", 20, []result{{1, "a", false}, {2, "", false}, {3, "b", false}}},
		{"CRLF", "a\r\nb\r\n", 20, []result{{1, "a", false}, {2, "b", false}}},
		{"exactly max, with CRLF", "0123456789\r\nx", 10, []result{{1, "0123456789", false}, {2, "x", false}}},
		{"max+1", "01234567890\nx", 10, []result{{1, "", true}, {2, "x", false}}},
		{"long line at EOF", "x\n" + strings.Repeat("y", 100), 10, []result{{1, "x", false}, {2, "", true}}},
		// Lines longer than the 16-byte buffer take several reads.
		{"lines longer than the buffer", strings.Repeat("a", 40) + "\n" + strings.Repeat("b", 70) + "\n" + strings.Repeat("c", 50),
			50, []result{{1, strings.Repeat("a", 40), false}, {2, "", true}, {3, strings.Repeat("c", 50), false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lr := lineReader{r: bufio.NewReaderSize(strings.NewReader(tt.input), 16), max: tt.max}
			var got []result
			for {
				text, err := lr.next()
				if err == io.EOF {
					break
				}
				if err != nil && !errors.Is(err, errLineTooLong) {
					t.Fatalf("line %d: %v", lr.n, err)
				}
				got = append(got, result{lr.n, string(text), err != nil})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
