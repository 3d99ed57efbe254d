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
