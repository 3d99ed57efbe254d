package amqp_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
)

// droppingBroker accepts one AMQP connection, answers connection.start
// and connection.tune, reads connection.open and then closes the socket
// without a word: what a client sees when the broker (or a proxy before
// it) goes away in the middle of a handshake.
func droppingBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	method := func(class, id uint16, args []byte) []byte {
		payload := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, class), id)
		payload = append(payload, args...)
		f := []byte{1, 0, 0}
		f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
		return append(append(f, payload...), 0xCE)
	}
	longstr := func(b []byte, s string) []byte {
		return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
	}
	readFrame := func(c net.Conn) error {
		h := make([]byte, 7)
		if _, err := io.ReadFull(c, h); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(h[3:])+1))
		return err
	}
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, 8)); err != nil { // protocol header
			return
		}
		start := []byte{0, 9, 0, 0, 0, 0} // version 0-9, empty server properties
		start = longstr(longstr(start, "PLAIN"), "en_US")
		tune := binary.BigEndian.AppendUint16(nil, 2047)
		tune = binary.BigEndian.AppendUint32(tune, 131072)
		tune = binary.BigEndian.AppendUint16(tune, 60)
		_, _ = c.Write(method(10, 10, start))
		_ = readFrame(c) // start-ok
		_, _ = c.Write(method(10, 30, tune))
		_ = readFrame(c) // tune-ok
		_ = readFrame(c) // open: drop here
	}()
	return ln.Addr().String()
}

// A connection dropped after connection.open is not "vhost not found":
// RabbitMQ refuses a vhost with a connection.close (530, which amqp091
// returns with Server set), and amqp091 returns its ErrVhost only when the
// socket closed without one. classifyConnect matches ErrVhost itself, so a
// broker restarting mid-handshake is a refusal, and StopOnRefusal (publish,
// dlq replay) gives up at once with "create it, or grant the user
// permissions on it". Fix: name ErrVhostNotFound only for an *amqp091.Error
// with Server set.
func TestDial_DroppedAfterOpenIsNotARefusal(t *testing.T) {
	t.Parallel()
	addr := droppingBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, "amqp://guest:guest@"+addr+"/", "drop-after-open")
	if err == nil {
		_ = conn.Close()
		t.Fatal("dial succeeded")
	}
	if amqp.IsRefusal(err) {
		t.Errorf("Dial = %v: a dropped connection is named a refusal", err)
	}
}
