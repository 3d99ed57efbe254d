package amqp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/eventlog"
	"github.com/eventfleet/eventfleet/internal/brokertest"
	"github.com/eventfleet/eventfleet/metrics"
)

func BenchmarkZZLog(b *testing.B) {
	exchange := brokertest.Name(b)
	app := brokertest.Name(b)
	q := amqp.AppQueue(app)
	brokertest.Cleanup(b, []string{q, q + ".dead", amqp.UnroutedQueue(exchange)}, []string{exchange})
	cfg := amqp.WorkerConfig{URL: brokertest.URL(b), Exchange: exchange, App: app, Logger: testLogger(b), Retry: fast,
		QueueType: os.Getenv("ZZQ"), Metrics: metrics.New()}
	for _, d := range fast.Stages() {
		brokertest.Cleanup(b, []string{amqp.RetryQueue(q, d)}, nil)
	}
	pr, pw, _ := os.Pipe()
	go io.Copy(io.Discard, pr)
	h := eventlog.New(pw)
	w, err := amqp.NewWorker(cfg, h)
	if err != nil {
		b.Fatal(err)
	}
	_ = w.Start(context.Background())
	<-w.Ready()
	_ = w.Stop(context.Background())
	barePublish(b, exchange, b.N, 256)
	w, _ = amqp.NewWorker(cfg, h)
	b.ReportAllocs()
	b.ResetTimer()
	report := costs(b)
	_ = w.Start(context.Background())
	for w.Stats().Handled < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	reportRate(b, b.N)
	report(b.N)
	_ = w.Stop(context.Background())
}

func BenchmarkZZBareLog(b *testing.B) {
	exchange, queue := benchQueue(b)
	barePublish(b, exchange, b.N, 256)
	ch := brokertest.Channel(b)
	if err := ch.Qos(64, 0, false); err != nil {
		b.Fatal(err)
	}
	pr, pw, _ := os.Pipe()
	go io.Copy(io.Discard, pr)
	b.ReportAllocs()
	b.ResetTimer()
	report := costs(b)
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := 1; i <= b.N; i++ {
		d := <-ds
		agg, _ := d.Headers[amqp.HeaderAggregateID].(string)
		buf.Reset()
		if err := enc.Encode(eventlog.Line{ID: d.MessageId, Type: d.Type, AggregateID: agg, Source: d.AppId,
			Time: d.Timestamp.UTC(), Attempt: 1, Data: d.Body}); err != nil {
			b.Fatal(err)
		}
		pw.Write(buf.Bytes())
		if i%16 == 0 || i == b.N {
			if err := d.Ack(true); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	reportRate(b, b.N)
	report(b.N)
}
