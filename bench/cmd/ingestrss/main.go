// Command ingestrss measures the peak memory of a `publisher serve` process
// under waves of concurrent 1 MiB POST /events (docs/benchmarks.md, "Ingest
// memory"). It starts the binary on a fresh exchange of AMQP_URL, sends the
// waves, reads the process's VmRSS and VmHWM from /proc, and deletes the
// exchange and its unrouted queue.
//
//	go build -o /tmp/publisher ./cmd/publisher
//	cd bench && go run ./cmd/ingestrss -bin /tmp/publisher -events tiny
//	cd bench && go run ./cmd/ingestrss -bin /tmp/publisher -events big
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/ingest"
)

func main() {
	bin := flag.String("bin", "", "the publisher binary (required)")
	kind := flag.String("events", "big", "tiny: 1 MiB of {\"type\":\"A\"} (refused, 413); big: 500 events of 2 KB (published)")
	waves := flag.Int("waves", 5, "waves of requests")
	conc := flag.Int("concurrency", 10, "requests at once in a wave")
	flag.Parse()
	if *bin == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bin, *kind, *waves, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "ingestrss:", err)
		os.Exit(1)
	}
}

func run(bin, kind string, waves, conc int) error {
	url := os.Getenv("AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	key, err := ingest.NewKey()
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	exchange := fmt.Sprintf("ingestrss_%d", os.Getpid())
	defer cleanup(url, exchange)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "AMQP_URL="+url, "EXCHANGE="+exchange, "PUBLISHER_ADDR="+addr,
		"METRICS_ADDR=off", "LOG_LEVEL=warn", "PUBLISHER_KEYS=ingestrss "+ingest.HashKey(key))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitReady("http://" + addr + "/readyz"); err != nil {
		return err
	}
	idle := status(cmd.Process.Pid, "VmRSS")
	body := makeBody(kind)
	codes := map[int]int{}
	var mu sync.Mutex
	for range waves {
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				code := post("http://"+addr+"/events", key, body)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	fmt.Printf("%s: %d waves of %d requests of %d bytes: answers %v; RSS idle %s, peak (VmHWM) %s\n",
		kind, waves, conc, len(body), codes, idle, status(cmd.Process.Pid, "VmHWM"))
	return nil
}

func makeBody(kind string) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	if kind == "tiny" {
		for b.Len() < 1<<20-20 {
			b.WriteString(`{"type":"A"},`)
		}
		b.Truncate(b.Len() - 1)
	} else {
		pad := strings.Repeat("x", 2000)
		for i := range 500 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"type":"IngestRSSEvent","data":{"pad":%q}}`, pad)
		}
	}
	b.WriteString("]")
	return b.Bytes()
}

func post(url, key string, body []byte) int {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func waitReady(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within a minute", url)
}

// status is a field of /proc/<pid>/status, e.g. "18088 kB".
func status(pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func cleanup(url, exchange string) {
	conn, err := amqp091.Dial(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingestrss: cleanup:", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	_, _ = ch.QueueDelete(exchange+".unrouted", false, false, false)
	_ = ch.ExchangeDelete(exchange, false, false)
}
