package amqp

import "time"

// The names of an app's queues (see the package documentation, "Topology").

// AppQueue is the queue of app: "events_<app>".
func AppQueue(app string) string { return "events_" + app }

// RetryQueue is app queue q's delay queue for delay d, e.g. "events_a.retry.10s".
func RetryQueue(q string, d time.Duration) string { return q + ".retry." + d.String() }

// DeadQueue is app queue q's dead-letter queue, e.g. "events_a.dead".
func DeadQueue(q string) string { return q + ".dead" }

// UnroutedQueue is where unroutable events of exchange are kept.
func UnroutedQueue(exchange string) string { return exchange + ".unrouted" }

// HopsExchange is app queue q's own direct exchange, e.g. "events_a.hops",
// bound to each of the app's queues with the queue's name as key. The
// Worker's retries and dead letters, and replays, are published there, and
// queues created by this version on dead-letter through it, so an app's broker
// user needs write on its own names only: write on the default exchange
// would reach every queue of the vhost (docs/least-privilege.md).
func HopsExchange(q string) string { return q + ".hops" }
