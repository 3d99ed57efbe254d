package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// bareCLIArg makes efbench run as the bare reference of `publisher publish
// --file`: a process that does the same work with amqp091-go alone.
const bareCLIArg = "bare-publish-file"

// bareInput is the line format `publisher publish` reads.
type bareInput struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	AggregateID string          `json:"aggregate_id"`
	Data        json.RawMessage `json:"data"`
}

// bareCLIMain reads NDJSON events from -file, decodes each line with
// encoding/json (unknown fields refused, as publisher publish does), and
// publishes each as a persistent mandatory message with a sliding confirm
// window of -window, then prints how many were confirmed.
func bareCLIMain(args []string) int {
	fs := flag.NewFlagSet(bareCLIArg, flag.ContinueOnError)
	url := fs.String("url", "", "broker URL")
	exchange := fs.String("exchange", "", "exchange")
	file := fs.String("file", "", "NDJSON events")
	window := fs.Int("window", 256, "confirms outstanding")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	n, err := barePublishFile(*url, *exchange, *file, *window)
	if err != nil {
		fmt.Fprintln(os.Stderr, bareCLIArg+":", err)
		return 1
	}
	fmt.Printf("published=%d\n", n)
	return 0
}

func barePublishFile(url, exchange, file string, window int) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	conn, ch, err := dialChannel(url, "efbench-bare-cli")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := ch.Confirm(false /* noWait */); err != nil {
		return 0, err
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, window+1))
	outstanding, n := 0, 0
	wait := func() error {
		c, ok := <-confirms
		if !ok {
			return errors.New("channel closed while waiting for confirms")
		}
		if !c.Ack {
			return fmt.Errorf("message %d nacked", c.DeliveryTag)
		}
		outstanding--
		return nil
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var in bareInput
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if derr := dec.Decode(&in); derr != nil {
				return n, fmt.Errorf("line %d: %w", n+1, derr)
			}
			if in.ID == "" {
				in.ID = uuid.Must(uuid.NewV7()).String()
			}
			for outstanding >= window {
				if err := wait(); err != nil {
					return n, err
				}
			}
			err := ch.PublishWithContext(context.Background(), exchange, in.Type,
				true,  // mandatory, as publisher publish
				false, // immediate
				amqp091.Publishing{
					ContentType:  "application/json",
					DeliveryMode: amqp091.Persistent,
					MessageId:    in.ID,
					Type:         in.Type,
					Timestamp:    time.Now(),
					Body:         in.Data,
				})
			if err != nil {
				return n, err
			}
			outstanding++
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	for outstanding > 0 {
		if err := wait(); err != nil {
			return n, err
		}
	}
	return n, nil
}
