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
