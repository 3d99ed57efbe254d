package outbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/pgtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakePublisher records what it published, in order, and refuses events
// its refuse func picks. It keeps PublishOrdered's order: an event whose
// predecessor was refused is not sent.
type fakePublisher struct {
	mu     sync.Mutex
	got    []event.Event
	batch  []int // size of each PublishOrdered
	refuse func(ev event.Event) error
}

func (p *fakePublisher) PublishOrdered(_ context.Context, evs []event.Event, after []int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batch = append(p.batch, len(evs))
	be := &amqp.BatchError{Errs: make([]error, len(evs))}
	for i, ev := range evs {
		if after != nil && after[i] >= 0 && be.Errs[after[i]] != nil {
			be.Errs[i] = amqp.ErrNotSent
			be.Failed++
			continue
		}
		if p.refuse != nil {
			if err := p.refuse(ev); err != nil {
				be.Errs[i] = err
				be.Failed++
				continue
			}
		}
		p.got = append(p.got, ev)
	}
	if be.Failed > 0 {
		return be
	}
	return nil
}

func (p *fakePublisher) events() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func (p *fakePublisher) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, ev := range p.got {
		ids = append(ids, ev.ID)
	}
	return ids
}

func (p *fakePublisher) setRefuse(f func(event.Event) error) {
	p.mu.Lock()
	p.refuse = f
	p.mu.Unlock()
}

// migrated is a fresh database with the eventfleet outbox.
func migrated(t *testing.T) (url string, conn *pgx.Conn) {
	t.Helper()
	url = pgtest.Database(t)
	conn = pgtest.Conn(t, url)
	if err := Migrate(context.Background(), conn, DefaultTable, FormatEventfleet); err != nil {
		t.Fatal(err)
	}
	return url, conn
}

func startRelay(t *testing.T, cfg Config, pub Publisher) *Relay {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	r, err := New(cfg, pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
	return r
}

// addTx adds evs in one transaction and commits it (or rolls it back).
func addTx(t *testing.T, conn *pgx.Conn, commit bool, evs ...event.Event) []string {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range evs {
		id, err := Add(ctx, tx, ev)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if commit {
		err = tx.Commit(ctx)
	} else {
		err = tx.Rollback(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func ev(typ, agg, data string) event.Event {
	return event.Event{Type: typ, AggregateID: agg, Data: []byte(data)}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func count(t *testing.T, conn *pgx.Conn, q string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func sameIDs(got, want []string) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

var errNack = errors.Join(amqp.ErrNacked, errors.New("test: nacked"))

func pgtestConn(t *testing.T, url string) *pgx.Conn { return pgtest.Conn(t, url) }
