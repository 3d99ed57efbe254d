package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/config"
	"github.com/eventfleet/eventfleet/metrics"
	"github.com/eventfleet/eventfleet/redisbridge"
)

// redisSource is RELAY_SOURCE=redis (pub/sub) or redis-stream.
func redisSource(cfg config.Relay, p *amqp.Publisher, m *metrics.Metrics, log *slog.Logger) (relaySource, error) {
	redisbridge.SetLogger(log)
	rcfg := cfg.RedisConfig()
	rcfg.Logger = log
	rcfg.Metrics = m
	b, err := redisbridge.New(rcfg, p)
	if err != nil {
		return relaySource{}, err
	}
	started := []any{"redis", redisbridge.RedactURL(rcfg.URL), "pattern", rcfg.Pattern}
	if rcfg.Source == redisbridge.SourceStream {
		started = []any{"redis", redisbridge.RedactURL(rcfg.URL), "stream", rcfg.Stream, "group", rcfg.Group,
			"consumer", rcfg.Consumer, "claim_idle", rcfg.ClaimIdle.String()}
	}
	return relaySource{
		Start: b.Start, Stop: b.Stop, Done: b.Done, Err: b.Err,
		Ready: func() error {
			switch {
			case !p.Connected():
				return brokerNotConnected(p)
			case !b.Stats().Connected && b.LastError() != nil:
				return fmt.Errorf("redis: %w", b.LastError())
			case !b.Stats().Connected:
				return errors.New("redis: connecting")
			}
			return nil
		},
		Started: started,
		Stopped: func() []any {
			s := b.Stats()
			return []any{"published", s.Published, "rejected", s.Rejected, "redelivered", s.Redelivered,
				"dropped", s.Dropped, "reconnects", s.Reconnects}
		},
	}, nil
}
