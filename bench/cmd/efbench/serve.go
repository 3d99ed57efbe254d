package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/ingest"
)

// The HTTP ingest rows: -http-clients clients, each on its own keep-alive
// connection, POST events to /events as fast as they are answered, one event
// per request (serve-single) or -http-array per request (serve-array). Both
// `publisher serve` and the bare ingest are started and connected before the
// timer starts; the time is from the first request to the last answer.

// eventInput is one event as clients send it (event.Input's JSON).
func eventInput(size int) []byte {
	return fmt.Appendf(nil, `{"type":%q,"aggregate_id":"bench-agg-1","data":%s}`, eventType, makeBody(size, 0))
}

// requestBody is what each request sends: one event, or a JSON array of
// perRequest of them.
func requestBody(size, perRequest int) []byte {
	ev := eventInput(size)
	if perRequest == 1 {
		return ev
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range perRequest {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(ev)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// loadHTTP posts ceil(n/perRequest) requests of events with size-byte data
// to url from clients goroutines,
// each with its own keep-alive connection, and checks every answer is a 202
// carrying perRequest ids (the last request carries the rest). It returns
// the number of events sent.
func loadHTTP(ctx context.Context, url string, size, n, perRequest, clients int) (int, error) {
	tr := &http.Transport{
		MaxIdleConns:        clients,
		MaxIdleConnsPerHost: clients,
		MaxConnsPerHost:     clients,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	full := requestBody(size, perRequest)
	requests := (n + perRequest - 1) / perRequest
	var (
		next  atomic.Int64
		sent  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ids acceptedIDs
			for {
				i := int(next.Add(1)) - 1
				if i >= requests || ctx.Err() != nil {
					return
				}
				k := min(perRequest, n-i*perRequest)
				body := full
				if k != perRequest {
					body = requestBody(size, k)
				}
				if err := postEvents(ctx, client, url, body, k, &ids); err != nil {
					errMu.Lock()
					first = keepFirst(first, err)
					errMu.Unlock()
					return
				}
				sent.Add(int64(k))
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return int(sent.Load()), first
}

type acceptedIDs struct {
	IDs []string `json:"ids"`
}

// postEvents sends one request and checks the answer.
func postEvents(ctx context.Context, client *http.Client, url string, body []byte, want int, ids *acceptedIDs) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+benchKey)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	answer, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, tail(string(answer)))
	}
	ids.IDs = ids.IDs[:0]
	if err := json.Unmarshal(answer, ids); err != nil {
		return fmt.Errorf("POST %s: answer %q: %w", url, tail(string(answer)), err)
	}
	if len(ids.IDs) != want {
		return fmt.Errorf("POST %s: %d ids for %d events", url, len(ids.IDs), want)
	}
	return nil
}

// runServeBinary starts `publisher serve` with its defaults (a free port
// for PUBLISHER_ADDR and METRICS_ADDR, which several processes on one host
// need), waits until it is connected, then times the HTTP load.
func (b *bench) runServeBinary(ctx context.Context, n, perRequest int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	p, err := b.startServe(ctx, exchange)
	if err != nil {
		return measurement{}, err
	}
	defer p.stop()
	if err := p.waitReady(ctx, 30*time.Second); err != nil {
		return measurement{}, err
	}
	cpu0 := procCPU(p.cmd.Process.Pid)
	t := b.startTimer()
	stopPerf := b.perfRecord(p.cmd.Process.Pid)
	sent, err := loadHTTP(ctx, "http://"+p.addr+"/events", b.o.size, n, perRequest, b.o.httpClients)
	m := t.stop()
	stopPerf()
	m.clientCPU += procCPU(p.cmd.Process.Pid) - cpu0
	if err != nil {
		return m, fmt.Errorf("after %d events: %w: %s", sent, err, p.stderrTail())
	}
	if err := p.stop(); err != nil {
		return m, fmt.Errorf("publisher serve: %w: %s", err, p.stderrTail())
	}
	return m, b.verify(queue, n)
}

// serveProc is a running `publisher serve`.
type serveProc struct {
	cmd      *exec.Cmd
	addr     string // PUBLISHER_ADDR as bound
	admin    string // METRICS_ADDR as bound, if logged
	listened chan struct{}
	exited   chan struct{}
	exitErr  error
	mu       sync.Mutex
	stderr   []string
	stopped  bool
}

func (b *bench) startServe(ctx context.Context, exchange string) (*serveProc, error) {
	cmd := exec.CommandContext(ctx, b.bins.publisher, "serve")
	cmd.Env = append(os.Environ(),
		"AMQP_URL="+b.o.url,
		"EXCHANGE="+exchange,
		"APP_NAME=efbench",
		"PUBLISHER_ADDR=127.0.0.1:0",
		"METRICS_ADDR=127.0.0.1:0",
		"PUBLISHER_KEYS=efbench "+benchKeyHash(),
	)
	cmd.Env = append(cmd.Env, b.o.binEnv...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &serveProc{cmd: cmd, listened: make(chan struct{}), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil {
				switch {
				case rec.Msg == "listening" && p.addr == "":
					p.mu.Lock()
					p.addr = rec.Addr
					p.mu.Unlock()
					close(p.listened)
				case strings.HasPrefix(rec.Msg, "serving /metrics"):
					p.mu.Lock()
					p.admin = rec.Addr
					p.mu.Unlock()
				}
			}
			p.mu.Lock()
			p.stderr = append(p.stderr, line)
			if len(p.stderr) > 20 {
				p.stderr = p.stderr[1:]
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-read
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *serveProc) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return tail(strings.Join(p.stderr, "\n"))
}

// waitReady waits for the "listening" line, then for a 200 from /readyz on
// PUBLISHER_ADDR or METRICS_ADDR (the publisher is connected).
func (p *serveProc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	select {
	case <-p.listened:
	case <-p.exited:
		return fmt.Errorf("publisher serve exited (%v): %s", p.exitErr, p.stderrTail())
	case <-time.After(timeout):
		return fmt.Errorf("publisher serve not listening after %v: %s", timeout, p.stderrTail())
	case <-ctx.Done():
		return ctx.Err()
	}
	client := &http.Client{Timeout: time.Second}
	for {
		p.mu.Lock()
		addrs := []string{p.addr, p.admin}
		p.mu.Unlock()
		for _, a := range addrs {
			if a == "" {
				continue
			}
			resp, err := client.Get("http://" + a + "/readyz")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					client.CloseIdleConnections()
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publisher serve not ready after %v: %s", timeout, p.stderrTail())
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 15s); safe twice.
func (p *serveProc) stop() error {
	p.mu.Lock()
	already := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if !already {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("publisher serve did not stop within 15s of SIGTERM; killed")
	}
}

// runBareServe times the same HTTP load against bareIngest in this process.
func (b *bench) runBareServe(ctx context.Context, n, perRequest int) (measurement, error) {
	exchange, queue, done, err := b.publishTarget()
	defer done()
	if err != nil {
		return measurement{}, err
	}
	in, err := newBareIngest(b.o.url, exchange, amqp.DefaultWindow)
	if err != nil {
		return measurement{}, err
	}
	defer in.close()
	t := b.startTimer()
	sent, err := loadHTTP(ctx, "http://"+in.addr+"/events", b.o.size, n, perRequest, b.o.httpClients)
	m := t.stop()
	if err != nil {
		return m, fmt.Errorf("after %d events: %w", sent, err)
	}
	return m, b.verify(queue, n)
}

// bareIngest is the reference HTTP ingest: a net/http handler that parses
// one event or an array of them with encoding/json, publishes each with
// amqp091 on one confirm-mode channel (persistent, mandatory, the same
// properties as eventfleet's), at most window unconfirmed at once, and
// answers 202 with the ids once all of a request's events are confirmed.
type bareIngest struct {
	conn     *amqp091.Connection
	exchange string
	srv      *http.Server
	addr     string
	window   chan struct{} // a slot per unconfirmed message, freed by its confirm

	mu sync.Mutex // one publisher at a time on the channel, so tags match
	ch *amqp091.Channel
}

func newBareIngest(url, exchange string, window int) (*bareIngest, error) {
	conn, ch, err := dialChannel(url, "efbench-bare-ingest")
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false /* noWait */); err != nil {
		_ = conn.Close()
		return nil, err
	}
	// Mandatory messages that find no queue come back here; a client must
	// drain the channel (the bench's queue is bound, so none do).
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	go func() {
		for range returns {
		}
	}()
	// Each confirm frees a window slot as it arrives, whichever request
	// waits for it: requests that hold slots while waiting for slots would
	// deadlock once arrays outnumber the window.
	slots := make(chan struct{}, window)
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, window))
	go func() {
		for range confirms {
			<-slots
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	in := &bareIngest{conn: conn, ch: ch, exchange: exchange, addr: ln.Addr().String(), window: slots}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", in.events)
	in.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = in.srv.Serve(ln) }()
	return in, nil
}

func (in *bareIngest) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = in.srv.Shutdown(ctx)
	_ = in.conn.Close()
}

type bareEvent struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	AggregateID string          `json:"aggregate_id"`
	Data        json.RawMessage `json:"data"`
}

func (in *bareIngest) events(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var evs []bareEvent
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		err = json.Unmarshal(trimmed, &evs)
	} else {
		evs = make([]bareEvent, 1)
		err = json.Unmarshal(trimmed, &evs[0])
	}
	if err == nil && len(evs) == 0 {
		err = errors.New("no events")
	}
	for i := range evs {
		if err == nil && (evs[i].Type == "" || len(evs[i].Data) == 0) {
			err = fmt.Errorf("event %d: type and data are required", i)
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	confs := make([]*amqp091.DeferredConfirmation, 0, len(evs))
	ids := make([]string, len(evs))
	for i := range evs {
		if evs[i].ID == "" {
			evs[i].ID = event.NewID()
		}
		ids[i] = evs[i].ID
		select {
		case in.window <- struct{}{}:
		case <-ctx.Done():
			http.Error(w, ctx.Err().Error(), http.StatusServiceUnavailable)
			return
		}
		in.mu.Lock()
		c, err := in.ch.PublishWithDeferredConfirmWithContext(ctx, in.exchange, evs[i].Type,
			true,  // mandatory, as eventfleet publishes
			false, // immediate
			amqp091.Publishing{
				ContentType:  "application/json",
				DeliveryMode: amqp091.Persistent,
				MessageId:    evs[i].ID,
				Timestamp:    time.Now(),
				Type:         evs[i].Type,
				AppId:        "efbench",
				Headers:      amqp091.Table{amqp.HeaderAggregateID: evs[i].AggregateID},
				Body:         evs[i].Data,
			})
		in.mu.Unlock()
		if err != nil {
			<-in.window
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		confs = append(confs, c)
	}
	failed := 0
	for _, c := range confs {
		ok, err := c.WaitContext(ctx)
		if err != nil || !ok {
			failed++
		}
	}
	if failed > 0 {
		http.Error(w, fmt.Sprintf("%d of %d not confirmed", failed, len(evs)), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(acceptedIDs{IDs: ids})
}

// benchKey is the API key the benchmarked `publisher serve` accepts: the
// shipped path authenticates every request, and so does the one measured.
const benchKey = "efk_bench_0123456789abcdefghijklmnopqrstuvwxyzAB"

func benchKeyHash() string { return ingest.HashKey(benchKey) }
