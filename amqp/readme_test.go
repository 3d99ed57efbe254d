package amqp_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// libraryExample is the README's library snippet ("The library"): the lines
// between the README markers appear there verbatim, one tab less indented, so
// the README shows code that compiles and that TestREADME_LibraryExample runs.
// exchange and app make the test's names unique; in the README they are
// "domain_events" and "search".
func libraryExample(ctx context.Context, url, exchange, app string, bad func(event.Event) bool,
	index func(context.Context, event.Event) error) error {
	// README begin
	handlers := event.NewRegistry().
		OnFunc("CardAddedToLibraryEvent", func(ctx context.Context, e event.Event) error {
			if bad(e) {
				return retry.Permanent(errors.New("card does not exist")) // dead-letter now
			}
			return index(ctx, e) // an error here retries after RETRY_DELAYS
		})
	// Start the worker first: it declares the app's queue and bindings, and an
	// event published while no queue is bound for it reaches no app.
	w, err := amqp.NewWorker(amqp.WorkerConfig{URL: url, Exchange: exchange, App: app}, handlers)
	if err != nil {
		return err // errors.Is(err, amqp.ErrInvalidConfig)
	}
	if err := w.Start(ctx); err != nil { // returns at once, connects in the background
		return err
	}
	select {
	case <-w.Ready(): // consuming: the queue and its bindings exist
	case <-w.Done():
		return w.Err() // fatal, e.g. amqp.ErrTopologyMismatch
	case <-ctx.Done():
		return errors.Join(ctx.Err(), w.Stop(context.Background()))
	}

	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: url, Exchange: exchange, AppID: "library"})
	if err != nil {
		return errors.Join(err, w.Stop(ctx))
	}
	if err := p.Start(ctx); err != nil {
		return errors.Join(err, w.Stop(ctx))
	}
	err = p.Publish(ctx, event.Event{Type: "CardAddedToLibraryEvent", AggregateID: "lib-1",
		Data: json.RawMessage(`{"cardId":"c1"}`)}) // nil only after the broker's confirm
	if err == nil {
		<-ctx.Done() // run until told to stop, e.g. by signal.NotifyContext on SIGTERM
	}
	stop, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	// Graceful: running handlers finish and settle, then the connections close.
	return errors.Join(err, p.Stop(stop), w.Stop(stop))
	// README end
}

func TestREADME_LibraryExample(t *testing.T) {
	b := setup(t)
	app := b.exchange // unique too
	b.cleanupApp(t, app, retry.Policy{})
	indexed := make(chan event.Event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	result := make(chan error, 1)
	go func() {
		result <- libraryExample(ctx, b.url, b.exchange, app,
			func(event.Event) bool { return false },
			func(_ context.Context, e event.Event) error { indexed <- e; return nil })
	}()
	select {
	case e := <-indexed:
		if e.Type != "CardAddedToLibraryEvent" || e.AggregateID != "lib-1" || string(e.Data) != `{"cardId":"c1"}` {
			t.Errorf("handler got %+v", e)
		}
	case err := <-result:
		t.Fatalf("example returned before its event was handled: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the new app's handler got no event within 60s")
	}
	cancel()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("example: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("example did not stop within 60s of its context ending")
	}
}

// The README shows libraryExample's body exactly, so it cannot drift.
func TestREADME_ShowsTheTestedLibraryExample(t *testing.T) {
	src, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	body := between(t, string(src), "\t// README begin\n", "\t// README end\n")
	var lines []string
	for _, l := range strings.SplitAfter(body, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	want := "```go\n" + strings.Join(lines, "") + "```\n"
	want = strings.NewReplacer("Exchange: exchange, ", "", "App: app}", `App: "search"}`).Replace(want)
	if !strings.Contains(string(readme), want) {
		t.Fatalf("README.md does not show the tested library example; put this block in its \"The library\" section:\n%s", want)
	}
}

func between(t *testing.T, s, from, to string) string {
	t.Helper()
	i := strings.Index(s, from)
	j := strings.Index(s, to)
	if i < 0 || j < i {
		t.Fatalf("markers %q and %q not found", from, to)
	}
	return s[i+len(from) : j]
}
