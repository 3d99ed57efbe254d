package amqp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// scriptedBroker answers one amqp091 client on conn: the handshake, a channel,
// and one basic.get, answered with header (a whole content header frame)
// and bodySize body bytes. It is just enough of a server to run amqp091's
// own frame reader on a chosen header.
func scriptedBroker(conn net.Conn, header []byte, bodySize int) {
	defer conn.Close()
	// Writes go through their own goroutine, so the reads below never wait
	// for a client that stopped reading (amqp091 stops at a frame it cannot
	// parse, then writes connection.close, which must be read).
	out := make(chan []byte, 64)
	defer close(out)
	go func() {
		for b := range out {
			_, _ = conn.Write(b)
		}
	}()
	write := func(b []byte) bool { out <- b; return true }
	read := func() (cls, meth uint16, ok bool) {
		var h [7]byte
		if _, err := io.ReadFull(conn, h[:]); err != nil {
			return 0, 0, false
		}
		p := make([]byte, binary.BigEndian.Uint32(h[3:7])+1)
		if _, err := io.ReadFull(conn, p); err != nil || len(p) < 5 {
			return 0, 0, false
		}
		return binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4]), true
	}
	method := func(ch uint16, cls, meth uint16, args []byte) bool {
		p := binary.BigEndian.AppendUint16(nil, cls)
		p = binary.BigEndian.AppendUint16(p, meth)
		return write(rawFrame(frameMethod, ch, append(p, args...)))
	}
	longstr := func(b []byte, s string) []byte {
		return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
	}
	var proto [8]byte
	if _, err := io.ReadFull(conn, proto[:]); err != nil {
		return
	}
	start := []byte{0, 9}
	start = binary.BigEndian.AppendUint32(start, 0) // server properties: empty table
	start = longstr(start, "PLAIN")
	start = longstr(start, "en_US")
	if !method(0, 10, 10, start) {
		return
	}
	if _, _, ok := read(); !ok { // start-ok
		return
	}
	tune := binary.BigEndian.AppendUint16(nil, 0)
	tune = binary.BigEndian.AppendUint32(tune, 131072)
	tune = binary.BigEndian.AppendUint16(tune, 0)
	if !method(0, 10, 30, tune) {
		return
	}
	for range 2 { // tune-ok, open
		if _, _, ok := read(); !ok {
			return
		}
	}
	if !method(0, 10, 41, []byte{0}) {
		return
	}
	for {
		cls, meth, ok := read()
		if !ok {
			return
		}
		switch {
		case cls == 20 && meth == 10: // channel.open
			if !method(1, 20, 11, []byte{0, 0, 0, 0}) {
				return
			}
		case cls == 60 && meth == 70: // basic.get
			getOK := binary.BigEndian.AppendUint64(nil, 1)
			getOK = append(getOK, 0)
			getOK = appendShortstr(getOK, "")
			getOK = appendShortstr(getOK, "q")
			getOK = binary.BigEndian.AppendUint32(getOK, 0)
			if !method(1, 60, 71, getOK) {
				return
			}
			write(header)
			for left := bodySize; left > 0; {
				n := min(left, 4000)
				write(rawFrame(frameBody, 1, bytes.Repeat([]byte("b"), n)))
				left -= n
			}
		default: // connection.close and the like: done
			return
		}
	}
}

// getThrough runs amqp091's client against scriptedBroker and returns the
// delivery it reads, or its error.
func getThrough(header []byte, bodySize int, wrap func(net.Conn) net.Conn) (amqp091.Delivery, error) {
	client, server := net.Pipe()
	defer func() { _ = client.Close(); _ = server.Close() }()
	go scriptedBroker(server, header, bodySize)
	type result struct {
		d   amqp091.Delivery
		err error
	}
	res := make(chan result, 1)
	go func() {
		var c net.Conn = client
		if wrap != nil {
			c = wrap(client)
		}
		conn, err := amqp091.Open(c, amqp091.Config{SASL: []amqp091.Authentication{&amqp091.PlainAuth{Username: "u", Password: "p"}}})
		if err != nil {
			res <- result{err: err}
			return
		}
		ch, err := conn.Channel()
		if err != nil {
			res <- result{err: err}
			return
		}
		d, ok, err := ch.Get("q", true)
		if err == nil && !ok {
			err = errors.New("empty")
		}
		res <- result{d, err}
	}()
	select {
	case r := <-res:
		return r.d, r.err
	case <-time.After(5 * time.Second):
		return amqp091.Delivery{}, errHung
	}
}

var errHung = errors.New("no answer in 5s")

// FuzzVetHeader runs amqp091-go's own reader over random header tables,
// with and without vetting: vetted, every header is read, none is altered,
// and one is left out only where amqp091 cannot read it or the table is
// malformed; a body over the limit never arrives.
func FuzzVetHeader(f *testing.F) {
	seeds := [][]byte{
		encTable(kv{"a", fS("b")}),
		encTable(kv{"deep", nested(33)}),
		encTable(kv{"deep", nested(32)}, kv{"x", fI(1)}),
		encTable(kv{"wide", voids(8193)}),
		append(encTable(kv{"a", fS("b")}), 1, 'z', 'Z', 9),
		encTable(kv{"arr", fA(fF(kv{"k", nested(31)}), fS("s"))}),
		encTable(kv{HeaderWithheldBody, fL(1)}),
	}
	for _, s := range seeds {
		f.Add(s, uint16(10), uint16(0))
	}
	f.Fuzz(func(t *testing.T, table []byte, bodySize, limit uint16) {
		if len(table) > 60000 {
			return
		}
		hf := headerFrame(1, uint64(bodySize), table)
		plain, perr := getThrough(hf, int(bodySize), nil)
		vetted, verr := getThrough(hf, int(bodySize), func(c net.Conn) net.Conn { return vetInbound(c, int(limit)) })
		if verr != nil || errors.Is(perr, errHung) {
			t.Fatalf("vetted read failed: %v (plain: %v)", verr, perr)
		}
		withheld := limit > 0 && bodySize > limit
		if got, _ := vetted.Headers[HeaderWithheldBody].(int64); withheld != (got > 0 && got == int64(bodySize)) || withheld != (len(vetted.Body) == 0 && bodySize > 0) {
			t.Fatalf("body %d, limit %d: vetted body %d bytes, withheld header %v", bodySize, limit, len(vetted.Body), got)
		}
		if !withheld && len(vetted.Body) != int(bodySize) {
			t.Fatalf("body %d bytes, want %d", len(vetted.Body), bodySize)
		}
		if perr != nil {
			if _, ok := vetted.Headers[HeaderUnreadable]; !ok && !withheld {
				t.Fatalf("amqp091 cannot read the table (%v), yet vetting named nothing", perr)
			}
			return
		}
		// Vetting only leaves headers out, never alters one. It is stricter
		// than amqp091 about malformed containers (amqp091 reads an array
		// whose length runs past the table's end as empty): those it may
		// leave out although amqp091 reads them.
		for k, v := range vetted.Headers {
			if k != HeaderUnreadable && k != HeaderWithheldBody && !equalValues(plain.Headers[k], v) {
				t.Fatalf("header %q changed: plain %v, vetted %v", k, plain.Headers[k], v)
			}
		}
		_, marked := vetted.Headers[HeaderUnreadable]
		if _, forged := plain.Headers[HeaderWithheldBody]; !withheld && !forged && !marked && !equalTables(plain.Headers, vetted.Headers) {
			t.Fatalf("a table amqp091 reads was changed:\nplain  %v\nvetted %v", plain.Headers, vetted.Headers)
		}
	})
}

func equalTables(a, b amqp091.Table) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !equalValues(v, w) {
			return false
		}
	}
	return true
}

func equalValues(a, b any) bool {
	switch a := a.(type) {
	case amqp091.Table:
		b, ok := b.(amqp091.Table)
		return ok && equalTables(a, b)
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equalValues(a[i], b[i]) {
				return false
			}
		}
		return true
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	case float32:
		b, ok := b.(float32)
		return ok && (a == b || math.IsNaN(float64(a)) && math.IsNaN(float64(b)))
	case float64:
		b, ok := b.(float64)
		return ok && (a == b || math.IsNaN(a) && math.IsNaN(b))
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Equal(b)
	default:
		return a == b
	}
}

// TestVetInbound_AmqpClientReadsWhatItRefusedBefore runs amqp091's own reader:
// without vetting it refuses the header (and loses the connection); with
// vetting it reads the rest of the message.
func TestVetInbound_AmqpClientReadsWhatItRefusedBefore(t *testing.T) {
	t.Parallel()
	hf := headerFrame(1, 3, encTable(kv{"deep", nested(33)}, kv{"aggregate_id", fS("a-1")}))
	if _, err := getThrough(hf, 3, nil); err == nil {
		t.Fatal("amqp091 read a header nested 34 levels: the fixture tests nothing")
	}
	d, err := getThrough(hf, 3, func(c net.Conn) net.Conn { return vetInbound(c, 0) })
	if err != nil {
		t.Fatal(err)
	}
	if d.Headers["aggregate_id"] != "a-1" || d.Headers[HeaderUnreadable] != "deep" || string(d.Body) != "bbb" || d.MessageId != "id-1" {
		t.Errorf("delivery %+v", d)
	}
}
