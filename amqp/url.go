package amqp

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is the broker address used when none is configured.
const DefaultURL = "amqp://guest:guest@localhost:5672/"

// RedactURL returns u with its password replaced by "xxxxx", for logs and
// errors. An unparsable URL is hidden entirely rather than echoed.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<unparsable AMQP URL>"
	}
	return p.Redacted()
}

// ValidateURL checks that u is an AMQP URL the client accepts. The error
// never contains the password.
func ValidateURL(u string) error { return validateURL(u) }

func validateURL(u string) error {
	if _, err := amqp091.ParseURI(u); err != nil {
		return fmt.Errorf("%w: AMQP URL %s: %v", ErrInvalidConfig, RedactURL(u), err)
	}
	return nil
}

// DefaultHeartbeat is the AMQP heartbeat interval asked for when none is
// configured. A peer that stays silent for about three intervals (a half-open
// connection, a frozen broker) is treated as gone.
const DefaultHeartbeat = 10 * time.Second

// dial opens a connection named name (shown in the management UI). It gives up
// when ctx ends. Errors never contain the password. wrap, if not nil, wraps
// the TCP socket (below TLS, for amqps).
func dial(ctx context.Context, u, name string, heartbeat time.Duration, wrap func(net.Conn) net.Conn) (*amqp091.Connection, error) {
	type result struct {
		c   *amqp091.Connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		props := amqp091.NewConnectionProperties()
		props.SetClientConnectionName(name)
		c, err := amqp091.DialConfig(u, amqp091.Config{
			Properties: props,
			Heartbeat:  heartbeat,
			Dial: func(network, addr string) (net.Conn, error) {
				d := net.Dialer{Timeout: 10 * time.Second}
				c, err := d.DialContext(ctx, network, addr)
				if err == nil && wrap != nil {
					c = wrap(c)
				}
				return c, err
			},
		})
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("connect to %s: %w", RedactURL(u), r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() { // close the connection if the dial still succeeds
			if r := <-ch; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
