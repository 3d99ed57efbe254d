package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
)

// num is a float64 that encodes NaN and infinities as JSON null.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

type meta struct {
	Date      string            `json:"date"`
	Commit    string            `json:"commit"`
	Dirty     bool              `json:"dirty"`
	Broker    string            `json:"broker_version"`
	URL       string            `json:"broker_url"`
	GoVersion string            `json:"go_version"`
	CPUs      int               `json:"cpus"`
	CPUModel  string            `json:"cpu_model"`
	Command   string            `json:"command"`
	Options   map[string]string `json:"options"`
	Seconds   float64           `json:"seconds"`
}

// sample is one round's measurement of one contender.
type sample struct {
	Round      int            `json:"round"`
	Rate       num            `json:"msgs_per_s"`
	Seconds    num            `json:"seconds"`
	ClientCPU  num            `json:"client_cpu_us_per_msg"`
	MachineCPU num            `json:"machine_cpu_us_per_msg"`
	Extra      map[string]num `json:"extra,omitempty"`
	Error      string         `json:"error,omitempty"`
}

type result struct {
	Queue   string   `json:"queue"`
	Group   string   `json:"group"`
	ID      string   `json:"id"`
	Label   string   `json:"label"`
	N       int      `json:"n"`
	Samples []sample `json:"samples"`

	Median      num            `json:"median_msgs_per_s"`
	ClientCPU   num            `json:"median_client_cpu_us_per_msg"`
	MachineCPU  num            `json:"median_machine_cpu_us_per_msg"`
	Extra       map[string]num `json:"median_extra,omitempty"`
	VsRef       num            `json:"vs_reference"` // median of per-round ratios
	VsRefMedian num            `json:"vs_reference_of_medians"`
	VsWMDefault num            `json:"vs_watermill_default"`
	VsWMTuned   num            `json:"vs_watermill_tuned"`
	VsOne       num            `json:"vs_one_process,omitempty"`
}

type target struct {
	Target string `json:"target"`
	Queue  string `json:"queue"`
	What   string `json:"what"`
	Value  num    `json:"value"`
	Limit  string `json:"limit"`
	Met    bool   `json:"met"`
	// Ceiling rows measure what any client can reach (the bare loop), not
	// eventfleet: when a ceiling is under the limit, no client meets it.
	Ceiling bool `json:"ceiling,omitempty"`
}

type report struct {
	Meta    meta      `json:"meta"`
	Results []*result `json:"results"`
	Targets []target  `json:"targets"`

	o     options
	byKey map[string]*result
}

func newReport(o options, cs []contender, broker string) *report {
	r := &report{o: o, byKey: map[string]*result{}}
	commit, dirty := gitCommit(o.root)
	r.Meta = meta{
		Date:      time.Now().UTC().Format(time.RFC3339),
		Commit:    commit,
		Dirty:     dirty,
		Broker:    broker,
		URL:       amqp.RedactURL(o.url),
		GoVersion: runtime.Version(),
		CPUs:      runtime.NumCPU(),
		CPUModel:  cpuModel(),
		Command:   strings.TrimSpace("go run ./cmd/efbench " + strings.Join(os.Args[1:], " ")),
		Options: map[string]string{
			"rounds": strconv.Itoa(o.rounds), "n": strconv.Itoa(o.n), "n_slow": strconv.Itoa(o.nSlow),
			"latency_n": strconv.Itoa(o.latencyN), "scale_n": strconv.Itoa(o.scaleN),
			"size": strconv.Itoa(o.size), "window": strconv.Itoa(o.window), "prefetch": strconv.Itoa(o.prefetch),
			"concurrency": strconv.Itoa(o.concurrency), "batch": strconv.Itoa(o.batch),
			"http_clients": strconv.Itoa(o.httpClients), "http_array": strconv.Itoa(o.httpArray), "bin_env": strings.Join(o.binEnv, ","),
			"queues": strings.Join(o.queues, ","), "rate": strconv.FormatFloat(o.rate, 'f', -1, 64),
		},
	}
	for _, q := range o.queues {
		for _, c := range cs {
			res := &result{Queue: q, Group: c.group, ID: c.id, Label: c.label, N: c.n(o)}
			r.Results = append(r.Results, res)
			r.byKey[q+"/"+c.key()] = res
		}
	}
	return r
}

func (r *report) get(queue, key string) *result { return r.byKey[queue+"/"+key] }

// add records one measurement and prints a progress line on stderr.
func (r *report) add(queue string, c contender, round, n int, m measurement, err error) {
	res := r.get(queue, c.key())
	s := sample{Round: round, Extra: map[string]num{}}
	secs := m.elapsed.Seconds()
	s.Seconds = num(secs)
	s.Rate, s.ClientCPU, s.MachineCPU = num(math.NaN()), num(math.NaN()), num(math.NaN())
	if secs > 0 {
		s.Rate = num(float64(n) / secs)
		s.ClientCPU = num(float64(m.clientCPU.Microseconds()) / float64(n))
		s.MachineCPU = num(float64(m.machineCPU.Microseconds()) / float64(n))
	}
	for k, v := range m.extra {
		s.Extra[k] = num(v)
	}
	line := fmt.Sprintf("[round %d %-7s] %-9s %-20s", round, queue, c.group, c.id)
	if err != nil {
		s.Error = err.Error()
		s.Rate = num(math.NaN())
		fmt.Fprintf(os.Stderr, "%s FAILED: %v\n", line, err)
	} else {
		extra := ""
		if p99, ok := m.extra["p99_ms"]; ok {
			extra = fmt.Sprintf("  p50 %.1fms p99 %.1fms at %.0f/s", m.extra["p50_ms"], p99, m.extra["offered_rate"])
		}
		fmt.Fprintf(os.Stderr, "%s %8.0f msgs/s  %6.2fs  client %5.1f µs/msg%s\n", line, float64(s.Rate), secs, float64(s.ClientCPU), extra)
	}
	res.Samples = append(res.Samples, s)
}

// latencyRate is the offered rate of the latency runs: half the reference's
// first measured end-to-end maximum (publisher and consumer at once) for the
// queue type, else half its publisher's.
func (r *report) latencyRate(queue string) float64 {
	for _, key := range []string{"latency/bare-max", "publish/bare"} {
		res := r.get(queue, key)
		if res == nil {
			continue
		}
		for _, s := range res.Samples {
			if s.Error == "" && !math.IsNaN(float64(s.Rate)) {
				return math.Round(float64(s.Rate) / 2)
			}
		}
	}
	return 5000
}

func (res *result) rates() []float64 {
	var out []float64
	for _, s := range res.Samples {
		if s.Error == "" {
			out = append(out, float64(s.Rate))
		}
	}
	return out
}

func (res *result) field(f func(sample) num) []float64 {
	var out []float64
	for _, s := range res.Samples {
		if v := float64(f(s)); s.Error == "" && !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

// pairedRatio is the median over rounds of a's value over b's value in the
// same round: alternating contenders share each round's noise.
func pairedRatio(a, b *result, f func(sample) num) float64 {
	if a == nil || b == nil {
		return math.NaN()
	}
	var ratios []float64
	for _, sa := range a.Samples {
		for _, sb := range b.Samples {
			va, vb := float64(f(sa)), float64(f(sb))
			if sa.Round == sb.Round && sa.Error == "" && sb.Error == "" && vb > 0 && !math.IsNaN(va) {
				ratios = append(ratios, va/vb)
			}
		}
	}
	return median(ratios)
}

func rate(s sample) num { return s.Rate }
func p99(s sample) num  { return s.Extra["p99_ms"] }

// finish computes medians, ratios and the targets.
func (r *report) finish() {
	for _, res := range r.Results {
		res.Median = num(median(res.rates()))
		res.ClientCPU = num(median(res.field(func(s sample) num { return s.ClientCPU })))
		res.MachineCPU = num(median(res.field(func(s sample) num { return s.MachineCPU })))
		res.Extra = map[string]num{}
		keys := map[string]bool{}
		for _, s := range res.Samples {
			for k := range s.Extra {
				keys[k] = true
			}
		}
		for k := range keys {
			res.Extra[k] = num(median(res.field(func(s sample) num {
				if v, ok := s.Extra[k]; ok {
					return v
				}
				return num(math.NaN())
			})))
		}
		nan := num(math.NaN())
		res.VsRef, res.VsRefMedian, res.VsWMDefault, res.VsWMTuned, res.VsOne = nan, nan, nan, nan, nan
		switch res.Group {
		case "publish", "consume":
			ref := r.get(res.Queue, res.Group+"/bare")
			if res.ID == "ef-16" && r.get(res.Queue, "publish/bare-16") != nil {
				// Same window: 16 callers have at most 16 in flight.
				ref = r.get(res.Queue, "publish/bare-16")
			}
			if res.ID == "ef-batch" && r.get(res.Queue, "publish/bare-batch") != nil {
				// Same work: the window empties at the end of each batch.
				ref = r.get(res.Queue, "publish/bare-batch")
			}
			if res.ID == "ef-1" && r.get(res.Queue, "publish/bare-1") != nil {
				ref = r.get(res.Queue, "publish/bare-1")
			}
			res.VsRef = num(pairedRatio(res, ref, rate))
			if ref != nil {
				res.VsRefMedian = res.Median / ref.Median
			}
			res.VsWMDefault = num(pairedRatio(res, r.get(res.Queue, res.Group+"/wm-default"), rate))
			res.VsWMTuned = num(pairedRatio(res, r.get(res.Queue, res.Group+"/wm-tuned"), rate))
		case "paths":
			if ref := r.get(res.Queue, "paths/"+pathPair(res.ID)); ref != nil {
				res.VsRef = num(pairedRatio(res, ref, rate))
				res.VsRefMedian = res.Median / ref.Median
			}
		case "scale-out":
			ref := r.get(res.Queue, "consume/bare")
			res.VsRef = num(pairedRatio(res, ref, rate))
			if ref != nil {
				res.VsRefMedian = res.Median / ref.Median
			}
			res.VsOne = num(pairedRatio(res, r.get(res.Queue, "consume/bin-worker"), rate))
		case "latency":
			if strings.HasPrefix(res.ID, "relay-") {
				// Commit → delivery at its own rate: no bare row does that.
				break
			}
			if strings.HasSuffix(res.ID, "-max") {
				res.VsRef = num(pairedRatio(res, r.get(res.Queue, "latency/bare-max"), rate))
			} else {
				res.VsRef = num(pairedRatio(res, r.get(res.Queue, "latency/bare"), p99))
			}
		}
	}
	r.targets()
}

func (r *report) targets() {
	for _, q := range r.o.queues {
		ratio := func(key string) float64 {
			if res := r.get(q, key); res != nil {
				return float64(res.VsRef)
			}
			return math.NaN()
		}
		wm := func(key, against string) float64 {
			res := r.get(q, key)
			if res == nil {
				return math.NaN()
			}
			if against == "wm-default" {
				return float64(res.VsWMDefault)
			}
			return float64(res.VsWMTuned)
		}
		add := func(name, what string, v float64, limit string, met bool) {
			if math.IsNaN(v) {
				return
			}
			r.Targets = append(r.Targets, target{Target: name, Queue: q, What: what, Value: num(v), Limit: limit, Met: met,
				Ceiling: strings.HasPrefix(what, "ceiling:")})
		}
		for _, k := range []string{"ef-256", "ef-batch", "ef-16", "ef-1"} {
			if res := r.get(q, "publish/"+k); res != nil {
				v := float64(res.VsRef)
				against := " / bare"
				if k == "ef-16" && r.get(q, "publish/bare-16") != nil {
					against = " / bare, window 16"
				}
				if k == "ef-batch" && r.get(q, "publish/bare-batch") != nil {
					against = " / bare, all confirmed at the same points"
				}
				if k == "ef-1" {
					if r.get(q, "publish/bare-1") == nil {
						continue // 1 caller against window 256 says nothing
					}
					against = " / bare, window 1"
				}
				add("publisher ≥ 0.95× reference (same window)", res.Label+against, v, "≥ 0.95", v >= 0.95)
				if k == "ef-batch" && against != " / bare" {
					// Also against the loop that never waits for a batch.
					v = pairedRatio(res, r.get(q, "publish/bare"), rate)
					add("publisher ≥ 0.95× reference (same window)", res.Label+" / bare (never waits)", v, "≥ 0.95", v >= 0.95)
				}
			}
		}
		for _, res := range r.Results {
			if res.Queue == q && res.Group == "paths" && pathPair(res.ID) != "" {
				v := float64(res.VsRef)
				if isBridgeRow(res.ID) {
					// Issue 18 asks for the figure against the bare
					// publish limit (the paths table), not a target.
					continue
				}
				if res.ID == "bin-relay" {
					// Issue 16's target: the relay also reads and settles
					// every row in PostgreSQL.
					add("outbox relay ≥ 0.8× the bare publish limit (defaults)", res.Label, v, "≥ 0.8", v >= 0.8)
					continue
				}
				add("binary path ≥ 0.9× its bare reference (defaults)", res.Label, v, "≥ 0.9", v >= 0.9)
			}
		}
		v := ratio("consume/ef-worker")
		add("worker ≥ 0.95× reference consumer", "eventfleet Worker / bare consumer", v, "≥ 0.95", v >= 0.95)
		// Three readings: the same number of publishing goroutines, and
		// each library at its best.
		v = wm("publish/ef-1", "wm-default")
		add("≥ 3× watermill confirmed publish", "eventfleet 1 caller / watermill defaults (1 goroutine)", v, "≥ 3", v >= 3)
		// What any client waiting for each confirm could reach: if this is
		// under 3, so is every client at watermill's concurrency.
		v = wm("publish/bare-1", "wm-default")
		add("≥ 3× watermill confirmed publish", "ceiling: bare window 1 / watermill defaults (1 goroutine)", v, "≥ 3", v >= 3)
		v = wm("publish/ef-16", "wm-tuned")
		add("≥ 3× watermill confirmed publish", "eventfleet 16 callers / watermill tuned (16 goroutines)", v, "≥ 3", v >= 3)
		v = wm("publish/bare-16", "wm-tuned")
		add("≥ 3× watermill confirmed publish", "ceiling: bare window 16 / watermill tuned (16 goroutines)", v, "≥ 3", v >= 3)
		v = wm("publish/ef-256", "wm-tuned")
		add("≥ 3× watermill confirmed publish", "eventfleet 256 callers / watermill tuned (each at its best)", v, "≥ 3", v >= 3)
		v = wm("publish/ef-batch", "wm-tuned")
		add("≥ 3× watermill confirmed publish", "eventfleet PublishBatch / watermill tuned (each at its best)", v, "≥ 3", v >= 3)
		v = wm("publish/bare", "wm-tuned")
		add("≥ 3× watermill confirmed publish", "ceiling: bare window 256 / watermill tuned", v, "≥ 3", v >= 3)
		v = ratio("latency/ef")
		add("p99 latency at half load ≤ 1.5× reference", "eventfleet p99 / bare p99", v, "≤ 1.5", v <= 1.5)
	}
}

func (r *report) write(path string) error { return writeJSON(path, r) }

// print writes Markdown tables.
func (r *report) print(w io.Writer) {
	commit := r.Meta.Commit
	if r.Meta.Dirty {
		commit += " (dirty)"
	}
	fmt.Fprintf(w, "\nefbench %s · commit %s · RabbitMQ %s · %d CPUs · %s · %d rounds\n",
		r.Meta.Date, commit, r.Meta.Broker, r.Meta.CPUs, r.Meta.GoVersion, r.o.rounds)
	fmt.Fprintf(w, "%d-byte persistent JSON messages, durable queues, window %d, prefetch %d. Medians of the rounds;\n"+
		"ratios are medians of per-round ratios. CPU: µs per message, client processes / whole machine (broker included).\n",
		r.o.size, r.o.window, r.o.prefetch)

	for _, group := range []string{"publish", "consume"} {
		fmt.Fprintf(w, "\n### %s\n\n", group)
		fmt.Fprintln(w, "| queue | contender | N | msgs/s | range | vs bare | vs wm defaults | vs wm tuned | CPU client | CPU machine |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, res := range r.Results {
			if res.Group != group {
				continue
			}
			lo, hi := minMax(res.rates())
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s–%s | %s | %s | %s | %s | %s |%s\n", res.Queue, res.Label, thousands(float64(res.N)),
				thousands(float64(res.Median)), thousands(lo), thousands(hi), ratioStr(res.VsRef), ratioStr(res.VsWMDefault),
				ratioStr(res.VsWMTuned), fixed(res.ClientCPU, 1), fixed(res.MachineCPU, 1), errNote(res))
		}
	}

	fmt.Fprintf(w, "\n### paths: each binary with its defaults, against a bare reference doing the same work\n\n")
	fmt.Fprintln(w, "| queue | path | N events | binary msgs/s | range | bare msgs/s | range | binary ÷ bare | CPU client binary / bare | CPU machine binary / bare |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, res := range r.Results {
		if res.Group != "paths" || pathPair(res.ID) == "" {
			continue
		}
		ref := r.get(res.Queue, "paths/"+pathPair(res.ID))
		if ref == nil {
			ref = &result{Median: num(math.NaN()), ClientCPU: num(math.NaN()), MachineCPU: num(math.NaN())}
		}
		lo, hi := minMax(res.rates())
		rlo, rhi := minMax(ref.rates())
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s–%s | %s | %s–%s | %s | %s / %s | %s / %s |%s\n", res.Queue, res.Label, thousands(float64(res.N)),
			thousands(float64(res.Median)), thousands(lo), thousands(hi), thousands(float64(ref.Median)), thousands(rlo), thousands(rhi),
			ratioStr(res.VsRef), fixed(res.ClientCPU, 1), fixed(ref.ClientCPU, 1), fixed(res.MachineCPU, 1), fixed(ref.MachineCPU, 1), deliveredNote(res)+errNote(res)+errNote(ref))
	}

	fmt.Fprintf(w, "\n### scale-out (cmd/worker processes on one queue, %s messages)\n\n", thousands(float64(r.o.scaleN)))
	fmt.Fprintln(w, "| queue | processes | msgs/s | range | vs 1 process | vs bare consumer | CPU client | CPU machine |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, q := range r.o.queues {
		for _, k := range r.o.scale {
			var res *result
			vsOne := num(1)
			if k == 1 {
				res = r.get(q, "consume/bin-worker")
			} else if res = r.get(q, fmt.Sprintf("scale-out/bin-worker-x%d", k)); res != nil {
				vsOne = res.VsOne
			}
			if res == nil {
				continue
			}
			lo, hi := minMax(res.rates())
			fmt.Fprintf(w, "| %s | %d | %s | %s–%s | %s | %s | %s | %s |%s\n", q, k, thousands(float64(res.Median)),
				thousands(lo), thousands(hi), ratioStr(vsOne), ratioStr(res.VsRef), fixed(res.ClientCPU, 1), fixed(res.MachineCPU, 1), errNote(res))
		}
	}

	fmt.Fprintf(w, "\n### end to end: publish and consume at once, unpaced (%s messages)\n\n", thousands(float64(r.o.latencyN)))
	fmt.Fprintln(w, "| queue | contender | msgs/s | range | vs bare | CPU client | CPU machine |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|")
	for _, res := range r.Results {
		if res.Group != "latency" || !strings.HasSuffix(res.ID, "-max") {
			continue
		}
		lo, hi := minMax(res.rates())
		fmt.Fprintf(w, "| %s | %s | %s | %s–%s | %s | %s | %s |%s\n", res.Queue, res.Label, thousands(float64(res.Median)),
			thousands(lo), thousands(hi), ratioStr(res.VsRef), fixed(res.ClientCPU, 1), fixed(res.MachineCPU, 1), errNote(res))
	}

	fmt.Fprintf(w, "\n### latency, publish → handler, at a fixed offered rate (half the reference's end-to-end maximum)\n\n")
	fmt.Fprintln(w, "| queue | contender | offered msgs/s | achieved msgs/s | p50 ms | p99 ms | p99.9 ms | max ms | p99 vs bare |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, res := range r.Results {
		if res.Group != "latency" || strings.HasSuffix(res.ID, "-max") {
			continue
		}
		e := res.Extra
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |%s\n", res.Queue, res.Label, thousands(float64(e["offered_rate"])),
			thousands(float64(res.Median)), fixed(e["p50_ms"], 1), fixed(e["p99_ms"], 1), fixed(e["p999_ms"], 1), fixed(e["max_ms"], 1),
			ratioStr(res.VsRef), errNote(res))
	}

	fmt.Fprintf(w, "\n### cmd/worker process (HANDLER=log, prefetch %d, concurrency %d)\n\n", r.o.prefetch, r.o.concurrency)
	fmt.Fprintln(w, "| queue | start → consuming ms | same, fresh topology ms | RSS idle MiB | RSS draining MiB (peak sampled) | VmHWM MiB | msgs/s after \"consuming\" |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, q := range r.o.queues {
		res := r.get(q, "consume/bin-worker")
		if res == nil {
			continue
		}
		e := res.Extra
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", q, fixed(e["startup_ms"], 0), fixed(e["startup_fresh_ms"], 0),
			fixed(e["rss_idle_mib"], 1), fixed(e["rss_load_mib"], 1), fixed(e["rss_hwm_mib"], 1), thousands(float64(e["rate_from_consuming"])))
	}

	fmt.Fprintf(w, "\n### targets\n\n")
	fmt.Fprintln(w, "| target | queue | measured | value | limit | |")
	fmt.Fprintln(w, "|---|---|---|---:|---|---|")
	for _, t := range r.Targets {
		met := "**not met**"
		switch {
		case t.Ceiling && t.Met:
			met = "reachable"
		case t.Ceiling:
			met = "out of reach for any client"
		case t.Met:
			met = "met"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", t.Target, t.Queue, t.What, fixed(t.Value, 2), t.Limit, met)
	}
}

func errNote(res *result) string {
	n := 0
	for _, s := range res.Samples {
		if s.Error != "" {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" %d of %d rounds failed", n, len(res.Samples))
}

func minMax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(xs), slices.Max(xs)
}

func ratioStr(v num) string {
	if math.IsNaN(float64(v)) {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(v))
}

func fixed(v num, prec int) string {
	if math.IsNaN(float64(v)) {
		return "—"
	}
	return strconv.FormatFloat(float64(v), 'f', prec, 64)
}

// thousands formats a rounded number with thousands separators.
func thousands(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// gitCommit is the short HEAD commit of the tree at dir, and whether the
// tree has uncommitted changes.
func gitCommit(dir string) (string, bool) {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	status, _ := exec.Command("git", "-C", dir, "status", "--porcelain").Output()
	return strings.TrimSpace(string(out)), len(strings.TrimSpace(string(status))) > 0
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// deliveredNote is the share of sent messages that arrived, for the rows
// of at-most-once sources (bin-relay-redis), which may lose some.
func deliveredNote(res *result) string {
	d, ok := res.Extra["delivered_ratio"]
	if !ok {
		return ""
	}
	return fmt.Sprintf(" delivered %.3f of sent at %s/s", float64(d), thousands(float64(res.Extra["offered_rate"])))
}
