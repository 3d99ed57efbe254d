// Package e2e holds the end-to-end test of the fleet: it builds cmd/publisher
// and cmd/worker, runs them as processes against a real RabbitMQ (the one
// internal/brokertest finds: AMQP_URL, 127.0.0.1:5672 or testcontainers) and
// checks that every event reaches every app that subscribed to it, that
// unsubscribed events are kept in the unrouted queue, that poison events are
// dead-lettered after exactly RETRY_MAX_ATTEMPTS attempts with the configured
// delays, and that SIGTERM drains without losing anything.
package e2e
