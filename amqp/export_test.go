package amqp

import (
	"context"
	"net"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// DialWithHooks exposes dial's two connection hooks to the tests.
func DialWithHooks(ctx context.Context, u string, wrapSocket, inbound func(net.Conn) net.Conn) (*amqp091.Connection, error) {
	return dial(ctx, u, dialOptions{name: "dial-test", wrapSocket: wrapSocket, inbound: inbound})
}

// What FuzzDeliveryPath (package amqp_test, so that it can read the dead
// letter with the deadletter package, which imports this one) follows.
var (
	Decode       = decode
	Republishing = republishing
	TableSize    = tableSize
)

// StartAt makes p's connections start at element i of its URL list instead
// of a random one; call it before Start.
func StartAt(p *Publisher, i int) { p.nodes.cur = i }

// WorkerStartAt is StartAt for w's consuming connection and its hops.
func WorkerStartAt(w *Worker, i int) {
	w.nodes.cur = i
	w.hops.nodes.cur = i
}

// SplitURLs exposes the list's cutting to the tests.
var SplitURLs = splitURLs
