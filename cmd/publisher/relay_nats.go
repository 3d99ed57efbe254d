package main

import (
	"log/slog"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/natsbridge"
)

// natsSource is RELAY_SOURCE=nats (core NATS) or jetstream.
func natsSource(cfg config.Relay, p *amqp.Publisher, m *metrics.Metrics, log *slog.Logger) (relaySource, error) {
	ncfg := cfg.NATS.BridgeConfig()
	ncfg.Logger = log
	ncfg.Metrics = m
	b, err := natsbridge.New(ncfg, p)
	if err != nil {
		return relaySource{}, err
	}
	started := []any{"nats", natsbridge.RedactURL(ncfg.URL), "subject", ncfg.Subject}
	if ncfg.Mode == natsbridge.ModeJetStream {
		started = append(started, "stream", ncfg.Stream, "consumer", ncfg.Consumer, "ack_wait", ncfg.AckWait.String())
	}
	return relaySource{
		Start: b.Start, Stop: b.Stop, Done: b.Done, Err: b.Err,
		Ready: func() error {
			switch {
			case !p.Connected():
				return brokerNotConnected(p)
			}
			// Not connected, or the JetStream source lost and being set
			// up again.
			return b.Healthy()
		},
		Started: started,
		Stopped: func() []any {
			s := b.Stats()
			return []any{"published", s.Published, "rejected", s.Rejected, "redelivered", s.Redelivered, "retried", s.Retried,
				"dropped", s.Dropped, "reconnects", s.Reconnects}
		},
	}, nil
}
