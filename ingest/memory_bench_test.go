package ingest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/ingest"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// BenchmarkHandler_TenConcurrentMiB serves ten concurrent requests of a
// 1 MiB body per iteration, on a real Publisher, and reports the process's
// memory: the peak of the live heap (runtime/metrics, sampled every
// millisecond) and the peak RSS (VmHWM of /proc/self/status), both in MB.
// VmHWM is the process's whole life: run one sub-benchmark per process,
// without -race:
//
//	go test -run '^$' -bench 'TenConcurrentMiB/refused' -benchtime 20x ./ingest/
//	go test -run '^$' -bench 'TenConcurrentMiB/accepted' -benchtime 20x ./ingest/
func BenchmarkHandler_TenConcurrentMiB(b *testing.B) {
	// 80,659 events of 13 bytes: the body, refused 413 unread.
	tiny := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"A"},`, (ingest.DefaultMaxBody-2)/13), ",") + "]"
	// 500 events of ~2 KiB: as much as a request may carry, accepted.
	pad := strings.Repeat("x", (ingest.DefaultMaxBody-2)/ingest.DefaultMaxEvents-len(`{"type":"A","data":{"p":""}},`))
	big := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"A","data":{"p":"`+pad+`"}},`, ingest.DefaultMaxEvents), ",") + "]"
	b.Run("refused-413", func(b *testing.B) { benchTenConcurrent(b, []byte(tiny), http.StatusRequestEntityTooLarge) })
	b.Run("accepted-202", func(b *testing.B) { benchTenConcurrent(b, []byte(big), http.StatusAccepted) })
}

func benchTenConcurrent(b *testing.B, body []byte, want int) {
	if len(body) > ingest.DefaultMaxBody {
		b.Fatalf("body of %d bytes is over DefaultMaxBody", len(body))
	}
	exchange, queue := brokertest.TopicExchange(b, func(x string) []string { return []string{amqp.UnroutedQueue(x)} })
	p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: brokertest.URL(b), Exchange: exchange, AppID: "ingest-bench", Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Stop(context.Background()) })
	h, err := ingest.New(ingest.Config{Auth: ingest.AuthNone, Publisher: p, Timeout: time.Minute, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	transport := &http.Transport{MaxIdleConnsPerHost: 10}
	b.Cleanup(transport.CloseIdleConnections)
	hc := &http.Client{Transport: transport, Timeout: time.Minute}
	purge := brokertest.Channel(b)

	startRSS := procStatus(b, "VmRSS")
	stop := make(chan struct{})
	var peakHeap uint64
	var sampled sync.WaitGroup
	sampled.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peakHeap = max(peakHeap, s[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	b.SetBytes(int64(10 * len(body)))
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				resp, err := hc.Post(srv.URL+"/events", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				defer resp.Body.Close()
				if resp.StatusCode != want {
					b.Errorf("status %d, want %d", resp.StatusCode, want)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
			})
		}
		wg.Wait()
		if _, err := purge.QueuePurge(queue, false /* noWait */); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	sampled.Wait()
	b.ReportMetric(float64(peakHeap)/1e6, "heap-peak-MB")
	b.ReportMetric(float64(startRSS)/1e3, "RSS-start-MB")
	b.ReportMetric(float64(procStatus(b, "VmHWM"))/1e3, "VmHWM-MB")
}

// procStatus reads a kB field of /proc/self/status.
func procStatus(b *testing.B, field string) int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
