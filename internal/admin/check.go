package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// Errors of Check and Probe.
var (
	// ErrNotReady: the process answered, and is not ready (or not serving).
	ErrNotReady = errors.New("not ready")
	// ErrOtherProcess: the address answered as another process than the
	// one asked for (another role or app, or nothing eventfleet).
	ErrOtherProcess = errors.New("another process answered")
)

// Probe asks the endpoint server on addr (a METRICS_ADDR value; an empty
// host means this machine) for /readyz. It returns the answer (zero when
// none could be read) and nil when ready, else why not.
func Probe(ctx context.Context, addr string) (Status, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Status{}, fmt.Errorf("METRICS_ADDR=%s: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("%w: GET %s: %w", ErrNotReady, url, err)
	}
	defer resp.Body.Close()
	var st Status
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&st)
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%w: GET %s: %s: %s %s", ErrNotReady, url, resp.Status, st.Status, st.Reason)
	}
	return st, nil
}

// Target is the process a health command asks about.
type Target struct {
	// Role and App name it; the answer must carry both.
	Role, App string
	// Addr is METRICS_ADDR when it was set: only that address is asked.
	// Empty: the records in Dir say where the processes of Role and App
	// listen, and their answers must carry the recorded instance id.
	Addr string
	// Default is asked when there is no record of a live process (the
	// runtime directory is not writable, say). Required when Addr is empty.
	Default string
	// Dir is the runtime directory. Defaults to RuntimeDir().
	Dir string
}

// Check asks the process(es) t names whether they are ready. It returns a
// line for each that is; an error says which is not, or what answered in
// its place. With several live records (several workers of one app on one
// host) every one must be ready.
func Check(ctx context.Context, t Target) ([]string, error) {
	if t.Addr != "" {
		line, err := t.ask(ctx, t.Addr, "")
		if err != nil {
			return nil, err
		}
		return []string{line}, nil
	}
	if t.Dir == "" {
		t.Dir = RuntimeDir()
	}
	recs, rerr := Records(t.Dir, t.Role, t.App)
	var out []string
	var errs []error
	for _, r := range recs {
		line, err := t.ask(ctx, r.Addr, r.Instance)
		if errors.Is(err, ErrOtherProcess) {
			// The pid was reused and the address is someone else's now:
			// the record is stale.
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w (pid %d)", err, r.PID))
		} else {
			out = append(out, line)
		}
	}
	if len(out)+len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	why := fmt.Sprintf("no record of a running %s of app %s in %s", t.Role, t.App, t.Dir)
	if rerr != nil {
		why = rerr.Error()
	}
	line, err := t.ask(ctx, t.Default, "")
	if err != nil {
		return nil, fmt.Errorf("%s; asked METRICS_ADDR's default %s: %w", why, t.Default, err)
	}
	return []string{line}, nil
}

// ask probes addr and checks that the answer is t's process (and instance,
// when not empty).
func (t Target) ask(ctx context.Context, addr, instance string) (string, error) {
	st, err := Probe(ctx, addr)
	if st.Role != "" || err == nil {
		if st.Role != t.Role || st.App != t.App || (instance != "" && st.Instance != instance) {
			return "", fmt.Errorf("%w: %s answers as %s, not as the %s of app %s%s",
				ErrOtherProcess, addr, describe(st), t.Role, t.App, ofInstance(instance))
		}
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ready: %s of app %s, instance %s, on %s", st.Role, st.App, st.Instance, addr), nil
}

func describe(st Status) string {
	if st.Role == "" {
		return "something that does not name itself (no role in its /readyz: not an eventfleet process, or an older one)"
	}
	return fmt.Sprintf("the %s of app %s, instance %s", st.Role, st.App, st.Instance)
}

func ofInstance(id string) string {
	if id == "" {
		return ""
	}
	return ", instance " + id
}
