// Package amqp is eventfleet on RabbitMQ: the topology, a confirmed Publisher and
// a Worker that consumes an app's queue with retries and dead-lettering.
//
// # Topology
//
//   - Exchange "domain_events" (Config.Exchange): a plain durable topic exchange,
//     declared with no arguments so that existing publishers (amqplib's
//     assertExchange with {durable: true}) can keep declaring it. Routing key =
//     event type.
//   - "domain_events.unrouted": a durable quorum queue. Events that no queue is
//     bound for come back to our Publisher as basic.return (every publish is
//     mandatory); the Publisher keeps them here before it reports success.
//     Its bound is a policy an operator applies (UnroutedPolicy: max-length,
//     max-length-bytes, overflow reject-publish), never a queue argument, which
//     existing queues would refuse (406). Full, it nacks the copy and the
//     publish fails with ErrNacked. The copies go through a direct exchange of
//     the same name bound to it (auto-delete: it lives as long as that
//     binding), not through the default exchange.
//   - "events_<app>": the app's queue (quorum by default, classic allowed), bound
//     to the app's event types or to "#". Many worker processes share it.
//   - "events_<app>.retry.<delay>": one quorum delay queue per distinct retry
//     delay, with a message TTL and the app's queue as dead-letter target, so a
//     retried event comes back to this app only. At-least-once dead-lettering
//     (quorum, RabbitMQ ≥ 3.10) makes that hop safe across broker crashes.
//   - "events_<app>.dead": the app's dead-letter queue (quorum). The app's quorum
//     queue also dead-letters here when a message exceeds x-delivery-limit (a
//     worker that crashes on it every time).
//   - "events_<app>.hops": the app's own direct exchange (HopsExchange), bound to
//     each of the three kinds of queue above by the queue's name. Retries, dead
//     letters and replays are published there, and queues dead-letter through
//     it, so an app's broker user needs write on its own names only; queues
//     created before it keep dead-lettering through the default exchange
//     (their arguments cannot change), which the broker does not check against
//     any user. Both of a Worker's connections declare it (own_topology.go),
//     and declare it again when a hop finds it missing. See
//     docs/least-privilege.md.
//
// Config.Topology TopologyPassive only checks that the shared part (the
// domain exchange, for a Publisher also the unrouted exchange and queue)
// exists, with passive declares, for users without configure permission on
// it; a missing one is ErrTopologyMissing. A Worker declares its own part
// either way. App names that would be names of another app's part
// (ending in ".hops" or ".dead", containing ".retry.") are refused
// (ValidateAppName).
//
// # Wire contract
//
// This package owns what the messages and queues look like (README, "Wire
// contract"), one file per concept, and the deadletter package reads and
// replays dead letters by it: the header names and their readers
// (headers.go), the Reason an event is dead for (reason.go), message ids,
// derived for messages without one (ids.go), queue names (queues.go), what a
// delivery becomes when it is published again (republish.go), the event time
// of an AMQP timestamp (eventtime.go) and the errors (errors.go).
//
// # Guarantees
//
// Publisher.Publish returns nil only after the broker confirmed the message (and,
// when it was unroutable, confirmed its copy in the unrouted queue). The Worker
// acks a delivery only after the handler succeeded or after the event's next
// home (a delay queue or the dead-letter queue) confirmed it. Every hop is
// therefore at least once: a crash at any point causes a duplicate, not a loss.
//
// # Connections
//
// Publisher and Worker each own their connections (a Worker has one to consume
// and one, through its own Publisher, to publish retries), reconnect with
// retry.Backoff, and re-declare their topology on every connection. Every dial
// (Dial, dial.go) has a deadline, DefaultHandshakeTimeout, for the TCP connect,
// TLS and AMQP handshakes together, and closes its socket when its context ends. A delivery
// is acked on the channel it came from; after a reconnect, acks of older
// deliveries fail and the broker redelivers them.
//
// A failed connect says why when the broker or TLS does (connect_error.go):
// ErrAccessRefused (user or password), ErrVhostNotFound, ErrTLS (the
// broker's certificate did not verify, or the broker refused the client's),
// ErrHandshakeTimeout. Publisher and Worker keep retrying them with backoff
// and report the latest in LastError, for health checks; a command-line tool
// sets PublisherConfig.StopOnRefusal to stop at once instead.
//
// A user who may log in can still be refused what it does next: a publish
// without write permission on the exchange (403), or to an exchange that
// does not exist (404), makes the broker close the channel; a consume
// without read permission on the queue is refused (403). These are
// ErrAccessRefused or ErrTopologyMissing too, naming the exchange or queue
// and the permission (refusal.go). The publishes a refusal covers fail with
// it, never republished into the same refusal; a Publisher then fails such
// publishes at once while disconnected, and each reconnect first asks the
// broker whether it takes them now (probe.go: a publish in a transaction
// that is rolled back, so nothing is routed) before it counts as connected.
// A Worker whose retry or dead-letter hop is refused keeps the delivery
// unacked and tries the hop again with backoff (hold.go). TLS settings
// come from the amqps:// URL's parameters or from TLSFiles, which win over
// them (tls_files.go).
//
// A URL may list several broker addresses, separated by commas (the nodes
// of a cluster). Each connection starts at a random one and moves to the
// next after every failure, trying each once before it backs off; Node
// names the one in use (endpoints.go).
//
// amqp091-go is imported as amqp091 so the two names never blur.
package amqp
