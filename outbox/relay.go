package outbox

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/lifecycle"
	"github.com/eventfleet/eventfleet/metrics"
)

// Publisher is what a Relay publishes through: *amqp.Publisher.
type Publisher interface {
	// PublishOrdered publishes evs, evs[i] only once evs[after[i]] was
	// confirmed (after[i] < 0: at once), and returns nil or an
	// *amqp.BatchError; an event not sent for its predecessor's failure
	// has amqp.ErrNotSent.
	PublishOrdered(ctx context.Context, evs []event.Event, after []int) error
}

// Relay publishes an outbox table's committed rows. Start it, Stop it once.
type Relay struct {
	cfg  Config
	t    table
	f    format
	pub  Publisher
	log  *slog.Logger
	life *lifecycle.Lifecycle
	m    *metrics.RelayMetrics

	leader    atomic.Bool
	published atomic.Int64
	setAside  atomic.Int64
	lastErr   atomic.Pointer[error]
	// refused holds the rows the broker refused, by row key, while this
	// relay leads; reset when it stops leading (a new leader starts
	// counting afresh). The run goroutine uses it, and a batch's publishing
	// goroutine while the run goroutine waits for it.
	refused map[string]refusal
	// confirmed counts the rows the broker confirmed while this relay
	// leads (used as refused is): a refusal counts against its row only
	// when the broker took another row since the row's previous try.
	confirmed uint64
}

// Stats are a Relay's counters since Start.
type Stats struct {
	Published int64 // rows published and settled
	SetAside  int64 // rows set aside
	Leader    bool  // this relay holds the table now
}

// New checks cfg and returns a Relay that publishes through pub.
func New(cfg Config, pub Publisher) (*Relay, error) {
	cfg, t, f, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Relay{cfg: cfg, t: t, f: f, pub: pub, log: cfg.Logger.With("table", t.name), life: lifecycle.New(),
		m: cfg.Metrics.Relay(t.name), refused: map[string]refusal{}}, nil
}

// Start begins relaying in the background: connect, become the table's
// relay or stand by, publish.
func (r *Relay) Start(context.Context) error {
	if err := r.life.Start(); err != nil {
		return err
	}
	go r.run()
	return nil
}

// Stop lets the scan in progress finish (its publishes confirmed and its
// rows settled) until ctx ends, then abandons it: its unsettled rows are
// published again by the next relay.
func (r *Relay) Stop(ctx context.Context) error { return r.life.StopAndWait(ctx) }

// Done is closed when the Relay has stopped.
func (r *Relay) Done() <-chan struct{} { return r.life.Done() }

// Stats returns the counters.
func (r *Relay) Stats() Stats {
	return Stats{Published: r.published.Load(), SetAside: r.setAside.Load(), Leader: r.leader.Load()}
}

// LastError is the last connection or publish failure, nil after a
// successful scan or once a new connection's database answers (a standby
// never scans).
func (r *Relay) LastError() error {
	if p := r.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (r *Relay) noteErr(err error) { r.lastErr.Store(&err) }

func (r *Relay) run() {
	err := lifecycle.Loop[*session]{
		Backoff: r.cfg.Backoff,
		Quit:    r.life.Stopping(),
		Connect: r.connect,
		Serve:   r.serve,
		Failed: func(err error, lost bool, _ uint64, attempt int) {
			r.noteErr(err)
			switch {
			case errors.Is(err, ErrTableMissing), errors.Is(err, ErrTableShape):
				r.log.Warn("the outbox table is not ready; retrying", "err", err, "attempt", attempt)
			case lost:
				r.log.Warn("database connection lost; reconnecting", "err", err, "attempt", attempt)
			default:
				r.log.Warn("database connection failed; retrying", "err", err, "attempt", attempt)
			}
		},
	}.Run()
	r.life.Finish(err)
}

// session is a connection that holds the table's advisory lock: the relay
// reads and settles only on it, so losing it ends the right to settle too.
type session struct {
	conn *pgx.Conn
}

// connect opens a connection and waits, as a standby, until it holds the
// table's lock; then it listens for the table's notifications.
func (r *Relay) connect(uint64) (*session, error) {
	ctx := r.life.HaltContext()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := pgx.Connect(cctx, r.cfg.DatabaseURL)
	cancel()
	if err != nil {
		return nil, connectError(err)
	}
	fail := func(err error) (*session, error) {
		_ = conn.Close(context.Background())
		return nil, err
	}
	key, oid, err := r.lockKey(ctx, conn)
	if err != nil {
		return fail(err)
	}
	if err := r.checkShape(ctx, conn, oid); err != nil {
		return fail(err)
	}
	standby := false
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
			return fail(fmt.Errorf("outbox: take the relay lock: %w", err))
		}
		if !standby {
			// The database answers: a standby never scans, so this is
			// where an earlier connection failure stops being current.
			r.lastErr.Store(nil)
		}
		if ok {
			break
		}
		if !standby {
			standby = true
			r.log.Info("another relay is publishing this table; standing by", "takeover", r.cfg.Takeover.String())
		}
		select {
		case <-r.life.Stopping():
			return fail(errNotLeader)
		case <-time.After(r.cfg.Takeover):
		}
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{r.t.channel()}.Sanitize()); err != nil {
		return fail(fmt.Errorf("outbox: listen: %w", err))
	}
	for _, q := range r.f.session() {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fail(fmt.Errorf("outbox: set up the session (%s): %w", q, err))
		}
	}
	r.log.Info("publishing this table's rows", "format", string(r.cfg.Format))
	return &session{conn: conn}, nil
}

// lockKey is the table's advisory lock, and the table's oid: derived from
// the oid, so that relays naming it differently (event_store,
// public.event_store) share it. A table that does not exist is an error
// saying how to make one; the relay retries with backoff (a deploy may be
// migrating).
func (r *Relay) lockKey(ctx context.Context, conn *pgx.Conn) (key int64, oid uint32, err error) {
	oid, ok, err := oidOf(ctx, conn, r.t.ident, r.t.name)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		how := "run `publisher relay migrate` (OUTBOX_FORMAT=eventfleet) or create it"
		if r.cfg.Format == FormatEventStore {
			how = "check OUTBOX_TABLE and the database in DATABASE_URL"
		}
		return 0, 0, fmt.Errorf("%w: table %s does not exist in this database: %s", ErrTableMissing, r.t.name, how)
	}
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "eventfleet-outbox:%d", oid)
	return int64(h.Sum64()), oid, nil
}

// connectError is a connection failure. pgx's errors name the host, user
// and database, never the password.
func connectError(err error) error {
	return fmt.Errorf("outbox: connect to the database: %w", err)
}

// serve publishes rows while the session lasts.
func (r *Relay) serve(s *session, _ uint64, _ int) error {
	r.leader.Store(true)
	r.m.Leader(true)
	defer func() {
		r.leader.Store(false)
		r.m.Leader(false)
		clear(r.refused)
		r.confirmed = 0
		_ = s.conn.Close(context.Background())
	}()
	ctx := r.life.HaltContext()
	failures := 0
	var lastPrune, lastSample time.Time
	pruneMore := false // the last prune batch was full: old rows are left
	for !r.life.IsStopping() {
		n, failed, err := r.pass(ctx, s)
		if err != nil {
			if r.life.IsStopping() {
				return nil
			}
			return err
		}
		if r.m != nil && time.Since(lastSample) >= backlogEvery {
			lastSample = time.Now()
			if err := r.sampleBacklog(ctx, s); err != nil {
				return err
			}
		}
		if q := r.f.prune(r.t); q != "" && !r.cfg.KeepProcessed && (pruneMore || time.Since(lastPrune) > time.Minute) {
			lastPrune = time.Now()
			if pruneMore, err = r.prune(ctx, s, q); err != nil {
				return err
			}
		}
		switch {
		case failed:
			failures++
			if r.pause(r.cfg.Backoff.Delay(failures - 1)) {
				return nil
			}
			continue
		case n >= r.cfg.Batch:
			failures = 0
			continue // a full scan: there may be more at once
		case pruneMore:
			failures = 0
			continue // catching up on old rows, a pass between batches
		}
		failures = 0
		if err := r.wait(s); err != nil {
			return err
		}
	}
	return nil
}

// pause waits d; it reports true when the Relay stops meanwhile.
func (r *Relay) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-r.life.Stopping():
		return true
	}
}

// wait returns at the table's next notification, after PollInterval, or
// when the Relay stops.
func (r *Relay) wait(s *session) error {
	ctx, cancel := context.WithTimeout(r.life.HaltContext(), r.cfg.PollInterval)
	defer cancel()
	go func() {
		select {
		case <-r.life.Stopping():
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := s.conn.WaitForNotification(ctx)
	if err == nil || ctx.Err() != nil {
		return nil // a notification, the poll interval, or stopping
	}
	return fmt.Errorf("outbox: wait for notifications: %w", err)
}

// refusal is a row the broker refused: how often, and when it may be tried
// again. The row waits for its next try, holding back its aggregate only;
// the relay backs off as a whole only when the broker is unavailable.
type refusal struct {
	n         int // refusals counted toward MaxAttempts
	tries     int // refusals in all: the backoff's attempt
	next      time.Time
	aggregate string // the row's aggregate, held back while the row waits
	confirmed uint64 // Relay.confirmed at the row's last refusal
}

// pass reads the unsettled rows from the start of the table, Batch at a
// time, publishes each batch (each row after its aggregate's previous one)
// and settles what was confirmed. For a
// format with a sequence the next batch (the rows after the current one's)
// is read, and the previous one settled, while the current one is being
// published, so the broker does not idle during the database's round trips;
// a row committed late below that point is found by the next pass, which
// starts from the top again. It reports how many rows it read (0 when every
// one is waiting for its next try: no reason to scan again at once) and
// whether a publish failed for a reason other than the row (the broker
// unreachable or slow): the caller backs off then. An error ends the
// session.
//
// What a pass publishes of an aggregate is a prefix of the aggregate's
// unsettled rows as its first scan's snapshot saw them. A later scan (the
// read-ahead) sees the table as it is then, so it is kept from what that
// snapshot could not see:
//   - rows written after the pass began: the read-ahead stops at the pass's
//     ceiling, the highest seq before its first scan. One snapshot sees an
//     aggregate's rows consistently (the app commits them one after the
//     other), but a later scan can see a row committed after a late one
//     below the cursor, which this pass will not read.
//   - aggregates behind a set-aside row when the pass began: held for the
//     whole pass, so that a row released meanwhile (set-aside retry), which
//     is below the cursor, is not overtaken by its aggregate's later rows.
//
// Both wait for the next pass, which starts from the top.
//
// Rows waiting for their next try, and their aggregates, are left out of
// every scan of the pass, so that they do not fill batches.
func (r *Relay) pass(ctx context.Context, s *session) (n int, failed bool, err error) {
	held := map[string]bool{} // aggregates held back for the whole pass
	var ceiling int64
	var setAside []string
	var anySetAside bool
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = s.conn.QueryRow(qctx, passStartSQL(r.t, r.f.ceiling(r.t), r.f.readsAhead())).Scan(&ceiling, &setAside, &anySetAside)
	cancel()
	if err != nil {
		return 0, false, fmt.Errorf("outbox: scan: %w", err)
	}
	for _, a := range setAside {
		held[a] = true
	}
	var waiting, waitingAggs []string
	now := time.Now()
	for key, f := range r.refused {
		if now.Before(f.next) {
			waiting = append(waiting, key)
			if f.aggregate != "" && !held[f.aggregate] {
				held[f.aggregate] = true
				waitingAggs = append(waitingAggs, f.aggregate)
			}
		}
	}
	// The first scan reads the set-aside aggregates from the side table
	// itself: only the waiting ones are passed (the list can be long after
	// a set-aside storm). With no row set aside when the pass began, no
	// scan of the pass looks at the side table: only this relay sets rows
	// aside (it holds the table's lock), and a row it sets aside meanwhile
	// is below the scans that follow, its aggregate held.
	q, args := r.f.scan(r.t, scanFilter{setAside: anySetAside, held: waitingAggs, waiting: waiting}, r.cfg.Batch)
	rows, err := r.scan(ctx, s, q, args)
	if err != nil {
		return 0, false, err
	}
	var toSettle []string
	tried, refusedAny := 0, false
	for len(rows) > 0 {
		n += len(rows)
		// Taken before the batch goes out: publishRows adds to held meanwhile.
		heldNow := slices.Collect(maps.Keys(held))
		published := make(chan outcome, 1)
		go func(rows []row) { published <- r.publishRows(ctx, rows, held) }(rows)
		// Meanwhile, on the connection the publishing goroutine does not use:
		// settle the batch before, read the one after.
		settleErr := r.settle(ctx, s, toSettle)
		toSettle = nil
		var next []row
		var scanErr error
		// Once Stop was called, only the batch in flight finishes: the rest
		// of the backlog is left to the next relay.
		if r.f.readsAhead() && len(rows) == r.cfg.Batch && settleErr == nil && !r.life.IsStopping() {
			q, args := r.f.scanAfter(r.t, scanFilter{setAside: anySetAside, held: heldNow, waiting: waiting}, r.cfg.Batch,
				rows[len(rows)-1].seq, ceiling)
			// Not the halt context: pgx closes a connection whose query is
			// cancelled, and the batch in flight is settled on it.
			next, scanErr = r.scan(context.WithoutCancel(ctx), s, q, args)
		}
		out := <-published
		err := errors.Join(settleErr, scanErr)
		for _, a := range out.setAside {
			if err != nil {
				break
			}
			err = r.putAside(ctx, s, a.row, a.reason, a.attempts)
		}
		if err != nil {
			// The session ends. Unless the batch before is unsettled (its
			// rows would be published again after this batch's later rows
			// of their aggregates), this batch's confirmed rows are settled
			// if the connection still answers (a failed statement or a
			// server-side timeout leaves it open): the next session need
			// not publish them again.
			if settleErr == nil {
				err = errors.Join(err, r.settle(ctx, s, out.settled))
			}
			return n, failed, err
		}
		toSettle = out.settled
		tried += out.tried
		refusedAny = refusedAny || out.refused
		if out.failed {
			// The broker is unavailable: settle what was confirmed, and let
			// the caller back off before reading on.
			failed = true
			break
		}
		if !r.f.readsAhead() || len(rows) < r.cfg.Batch || r.life.IsStopping() {
			break // read to the end (or one batch at a time: the caller scans again), or stopping
		}
		rows = next
	}
	if err := r.settle(ctx, s, toSettle); err != nil {
		return n, failed, err
	}
	if tried == 0 {
		return 0, failed, nil
	}
	if !failed && !refusedAny {
		r.lastErr.Store(nil)
	}
	return n, failed, nil
}

// outcome is what publishing one batch decided: the rows to settle and to
// set aside (done by pass, on the connection), and how it went.
type outcome struct {
	settled  []string
	setAside []setAside
	tried    int  // rows tried (not waiting for their next try, nor held)
	refused  bool // the broker refused a row (nack)
	failed   bool // the broker was unavailable for a row
}

type setAside struct {
	row      *row
	reason   string
	attempts int
}

// publishRows publishes one batch in one call: each row follows its
// aggregate's previous row (sent once that one is confirmed), so that other
// aggregates' rows keep the window full meanwhile. It touches no database:
// pass uses the connection meanwhile. held carries the aggregates held back
// from batch to batch.
func (r *Relay) publishRows(ctx context.Context, rows []row, held map[string]bool) (out outcome) {
	now := time.Now()
	var evs []event.Event
	var sent, after []int
	last := map[string]int{} // aggregate → index in evs of its latest row
	for i := range rows {
		row := &rows[i]
		a := row.ev.AggregateID
		if a != "" && held[a] {
			continue
		}
		if f, ok := r.refused[row.key]; ok && now.Before(f.next) {
			holdRow(held, row) // its aggregate's later rows wait behind it
			continue
		}
		out.tried++
		if row.bad != nil {
			out.setAside = append(out.setAside, setAside{row, row.bad.Error(), 0})
			holdRow(held, row)
			continue
		}
		prev := -1
		if a != "" {
			if j, ok := last[a]; ok {
				prev = j
			}
			last[a] = len(evs)
		}
		evs = append(evs, row.ev)
		sent = append(sent, i)
		after = append(after, prev)
	}
	if len(evs) == 0 {
		return out
	}
	errs := r.publish(ctx, evs, after)
	// A nack counts against its row only when the broker took another row
	// since the row's previous try (in this batch or any other): a broker
	// that refuses everything (a full queue under reject-publish, an
	// alarm) says nothing about the rows, and is ridden through with
	// backoff instead of setting them aside; a row refused alone in its
	// batch while others go through is not. A first refusal counts when
	// this batch had a confirm.
	before := r.confirmed
	for _, err := range errs {
		if err == nil {
			r.confirmed++
		}
	}
	for j, i := range sent {
		row := &rows[i]
		if errs[j] == nil {
			out.settled = append(out.settled, row.key)
			delete(r.refused, row.key)
			continue
		}
		holdRow(held, row)
		if errors.Is(errs[j], amqp.ErrNotSent) {
			out.tried-- // held behind its aggregate's failed row: not tried
			continue
		}
		switch kind := classify(errs[j]); kind {
		case rowInvalid:
			out.setAside = append(out.setAside, setAside{row, errs[j].Error(), r.refused[row.key].n + 1})
			delete(r.refused, row.key)
		case rowRefused:
			out.refused = true
			f, again := r.refused[row.key]
			if !again {
				f.confirmed = before
			}
			f.tries++
			if r.confirmed > f.confirmed {
				f.n++
			}
			f.confirmed = r.confirmed
			if f.n >= r.cfg.MaxAttempts {
				out.setAside = append(out.setAside, setAside{row, errs[j].Error(), f.n})
				delete(r.refused, row.key)
				break
			}
			f.next = time.Now().Add(r.cfg.Backoff.Delay(f.tries - 1))
			f.aggregate = row.ev.AggregateID
			r.refused[row.key] = f
		default:
			out.failed = true
		}
		r.noteErr(errs[j])
	}
	return out
}

func holdRow(held map[string]bool, row *row) {
	if a := row.ev.AggregateID; a != "" {
		held[a] = true
	}
}

// publish publishes one batch in its order and returns each event's error.
func (r *Relay) publish(ctx context.Context, evs []event.Event, after []int) []error {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	errs := make([]error, len(evs))
	err := r.pub.PublishOrdered(pctx, evs, after)
	if err == nil {
		return errs
	}
	var be *amqp.BatchError
	if errors.As(err, &be) && len(be.Errs) == len(evs) {
		return be.Errs
	}
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// failure is what a publish error says about its row.
type failure int

const (
	rowUnavailable failure = iota // the broker is unreachable, refusing or slow: not the row's fault
	rowRefused                    // the broker refused this message (nack): counts toward MaxAttempts
	rowInvalid                    // the row can never be published as it is
)

func classify(err error) failure {
	var invalid bool
	for _, target := range []error{event.ErrMissingType, event.ErrInvalidType, event.ErrInvalidData, event.ErrInvalidID,
		event.ErrInvalidAggregateID, event.ErrInvalidSource, amqp.ErrHeadersTooLarge} {
		if errors.Is(err, target) {
			invalid = true
		}
	}
	switch {
	case invalid:
		return rowInvalid
	case errors.Is(err, amqp.ErrNacked):
		return rowRefused
	}
	return rowUnavailable
}

// scan runs the scan query q with args and reads its rows.
func (r *Relay) scan(ctx context.Context, s *session, q string, args []any) ([]row, error) {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rs, err := s.conn.Query(qctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: scan: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		row, err := r.f.read(rs)
		if err != nil {
			return nil, fmt.Errorf("outbox: read a row: %w", err)
		}
		if row.ev.ID == "" {
			// A row written without an id (by hand, not by Add): an id of its
			// own, the same on every publish, so receivers can deduplicate.
			row.ev.ID = r.t.name + ":" + row.key
		}
		if row.bad == nil {
			// As the Publisher would refuse it; checked here so that such a
			// row is set aside whatever publishes it.
			row.bad = row.ev.Validate()
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: scan: %w", err)
	}
	return out, nil
}

func (r *Relay) settle(ctx context.Context, s *session, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	// Not the halt context: rows confirmed are settled even during a
	// hard stop, if the database answers in time.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := s.conn.Exec(qctx, r.f.settle(r.t), keys); err != nil {
		return fmt.Errorf("outbox: settle %d published rows (they will be published again): %w", len(keys), err)
	}
	r.published.Add(int64(len(keys)))
	r.m.Published(len(keys))
	return nil
}

func (r *Relay) putAside(ctx context.Context, s *session, row *row, reason string, attempts int) error {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	q := fmt.Sprintf(`INSERT INTO %s (row_key, aggregate_id, reason, attempts) VALUES ($1, $2, $3, $4)
ON CONFLICT (row_key) DO UPDATE SET reason = excluded.reason, attempts = excluded.attempts, last_failed_at = now()`,
		r.t.setAside.Sanitize())
	if _, err := s.conn.Exec(qctx, q, row.key, row.ev.AggregateID, reason, attempts); err != nil {
		return fmt.Errorf("outbox: set row %s aside: %w", row.key, err)
	}
	r.setAside.Add(1)
	r.m.SetAside()
	r.log.Warn("row set aside; its aggregate's later rows wait behind it", "row", row.key, "event_id", row.ev.ID,
		"aggregate_id", row.ev.AggregateID, "type", row.ev.Type, "reason", reason, "attempts", attempts)
	return nil
}

// pruneBatch is how many old processed rows one prune deletes: small, so
// that publishing waits at most one batch for it.
const pruneBatch = 1000

// prune deletes one batch of processed rows older than Retention; more
// reports a full batch (there may be more: serve prunes again after its next
// pass rather than a minute later).
func (r *Relay) prune(ctx context.Context, s *session, q string) (more bool, err error) {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tag, err := s.conn.Exec(qctx, q, pruneBatch, r.cfg.Retention.Seconds())
	if err != nil {
		return false, fmt.Errorf("outbox: prune processed rows: %w", err)
	}
	return tag.RowsAffected() == pruneBatch, nil
}

// backlogEvery is how often the publishing relay samples the table's
// backlog for its metrics: a count over the unsettled rows is not free.
const backlogEvery = 10 * time.Second

// sampleBacklog records the unsettled rows (counted up to 100,000), the
// oldest one's age and the set-aside rows.
func (r *Relay) sampleBacklog(ctx context.Context, s *session) error {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var pending, held int
	var oldest float64
	if err := s.conn.QueryRow(qctx, r.f.backlog(r.t)).Scan(&pending, &oldest, &held); err != nil {
		return fmt.Errorf("outbox: sample the backlog: %w", err)
	}
	r.m.Backlog(pending, oldest, held)
	return nil
}
