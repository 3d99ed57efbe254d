package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventfleet/eventfleet/natsbridge"
)

// NATS holds `publisher relay`'s settings for RELAY_SOURCE=nats (core NATS,
// at most once) and jetstream (a stream, at least once). The in-flight
// bound is the publisher's PUBLISH_WINDOW, and one batch's publishes are
// bounded by PUBLISH_TIMEOUT.
type NATS struct {
	// Mode is the source, from RELAY_SOURCE; not read from NATS_*.
	Mode natsbridge.Mode `env:"-"`
	// URL is the NATS server, or several separated by commas; credentials
	// may be in it, so keep it in a secret. Defaults to
	// natsbridge.DefaultURL.
	URL string `env:"NATS_URL"`
	// CredsFile is a NATS .creds file, instead of credentials in the URL.
	CredsFile string `env:"NATS_CREDS_FILE"`
	// Subject is the subject pattern; the event type is the subject
	// without its literal prefix. Defaults to natsbridge.DefaultSubject.
	Subject string `env:"NATS_SUBJECT"`
	// Stream and Consumer (jetstream) are the stream, created when
	// missing, and the durable consumer. Default to natsbridge's.
	Stream   string `env:"NATS_STREAM"`
	Consumer string `env:"NATS_CONSUMER"`
	// AckWait (jetstream) must exceed PUBLISH_TIMEOUT. Defaults to
	// natsbridge.DefaultAckWait.
	AckWait time.Duration `env:"NATS_ACK_WAIT"`
	// Window and PublishTimeout are the publisher's PUBLISH_WINDOW and
	// PUBLISH_TIMEOUT.
	Window         int           `env:"-"`
	PublishTimeout time.Duration `env:"-"`
}

func defaultNATS() NATS {
	return NATS{
		URL:      natsbridge.DefaultURL,
		Subject:  natsbridge.DefaultSubject,
		Stream:   natsbridge.DefaultStream,
		Consumer: natsbridge.DefaultConsumer,
		AckWait:  natsbridge.DefaultAckWait,
	}
}

// natsVars name the variable of each natsbridge.Config field.
var natsVars = map[string]string{
	"Mode":           "RELAY_SOURCE",
	"URL":            "NATS_URL",
	"CredsFile":      "NATS_CREDS_FILE",
	"Subject":        "NATS_SUBJECT",
	"Stream":         "NATS_STREAM",
	"Consumer":       "NATS_CONSUMER",
	"AckWait":        "NATS_ACK_WAIT",
	"PublishTimeout": "PUBLISH_TIMEOUT",
	"Window":         "PUBLISH_WINDOW",
}

// LoadNATS reads and checks the NATS_* settings for the relay source
// source (nats or jetstream), with the publisher's settings p (as
// LoadPublisher or LoadRelay read them). Errors are *Error naming the
// variable; a URL's password is hidden.
func LoadNATS(environ map[string]string, source string, p Publisher) (NATS, error) {
	c := defaultNATS()
	if err := parse(&c, environ); err != nil {
		return c, err
	}
	c.Mode = natsbridge.Mode(source)
	c.Window = p.Window
	c.PublishTimeout = p.Timeout
	switch {
	case c.Mode != natsbridge.ModeCore && c.Mode != natsbridge.ModeJetStream:
		return c, &Error{"RELAY_SOURCE", source, "use nats (core NATS, at most once) or jetstream (a JetStream stream, at least once)"}
	case c.Mode == natsbridge.ModeJetStream && c.AckWait <= 0:
		// natsbridge takes 0 for its default; a variable set to 0 is a
		// mistake. Core NATS has no acks: NATS_ACK_WAIT is ignored there.
		return c, &Error{"NATS_ACK_WAIT", c.AckWait.String(), "must be positive"}
	}
	// natsbridge checks the rest, AckWait > PublishTimeout included; its
	// field names become the variables'.
	if err := c.BridgeConfig().Validate(); err != nil {
		var ce *natsbridge.ConfigError
		if errors.As(err, &ce) {
			if name, ok := natsVars[ce.Field]; ok {
				reason := strings.ReplaceAll(ce.Reason, "PublishTimeout", "PUBLISH_TIMEOUT")
				if ce.Field == "AckWait" {
					reason += "; raise NATS_ACK_WAIT or lower PUBLISH_TIMEOUT"
				}
				return c, &Error{name, ce.Value, reason}
			}
		}
		return c, fmt.Errorf("relay NATS settings: %w", err)
	}
	return c, nil
}

// BridgeConfig is the natsbridge.Config these settings describe; the
// caller adds Logger and Metrics.
func (c NATS) BridgeConfig() natsbridge.Config {
	return natsbridge.Config{
		Mode:           c.Mode,
		URL:            c.URL,
		CredsFile:      c.CredsFile,
		Subject:        c.Subject,
		Stream:         c.Stream,
		Consumer:       c.Consumer,
		AckWait:        c.AckWait,
		PublishTimeout: c.PublishTimeout,
		Window:         c.Window,
	}
}
