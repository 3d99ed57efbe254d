package amqp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// field is a test value in AMQP field-table encoding (type octet first).
type field []byte

func fS(s string) field {
	return append(binary.BigEndian.AppendUint32(field{'S'}, uint32(len(s))), s...)
}
func fI(n int32) field { return binary.BigEndian.AppendUint32(field{'I'}, uint32(n)) }
func fL(n int64) field { return binary.BigEndian.AppendUint64(field{'l'}, uint64(n)) }

type kv struct {
	k string
	v field
}

// encTable is the content of a table (without its length).
func encTable(entries ...kv) []byte {
	var b []byte
	for _, e := range entries {
		b = appendShortstr(b, e.k)
		b = append(b, e.v...)
	}
	return b
}

func fF(entries ...kv) field {
	t := encTable(entries...)
	return append(binary.BigEndian.AppendUint32(field{'F'}, uint32(len(t))), t...)
}

func fA(elems ...field) field {
	var t []byte
	for _, e := range elems {
		t = append(t, e...)
	}
	return append(binary.BigEndian.AppendUint32(field{'A'}, uint32(len(t))), t...)
}

// voids is an array of n void values.
func voids(n int) field {
	elems := make([]field, n)
	for i := range elems {
		elems[i] = field{'V'}
	}
	return fA(elems...)
}

// nested is a table nested depth levels below the value itself.
func nested(depth int) field {
	v := fS("bottom")
	for range depth {
		v = fF(kv{"n", v})
	}
	return v
}

// headerFrame encodes a basic content header frame on channel ch with a
// content type, the headers table (nil: no headers property), a message id
// and a body size.
func headerFrame(ch uint16, bodySize uint64, table []byte) []byte {
	flags := uint16(0x8000 | 0x0080) // content type, message id
	if table != nil {
		flags |= flagHeaders
	}
	p := binary.BigEndian.AppendUint16(nil, classBasic)
	p = binary.BigEndian.AppendUint16(p, 0)
	p = binary.BigEndian.AppendUint64(p, bodySize)
	p = binary.BigEndian.AppendUint16(p, flags)
	p = appendShortstr(p, "application/json")
	if table != nil {
		p = binary.BigEndian.AppendUint32(p, uint32(len(table)))
		p = append(p, table...)
	}
	p = appendShortstr(p, "id-1")
	return rawFrame(frameHeader, ch, p)
}

func rawFrame(typ byte, ch uint16, payload []byte) []byte {
	f := []byte{typ}
	f = binary.BigEndian.AppendUint16(f, ch)
	f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
	f = append(f, payload...)
	return append(f, frameEnd)
}

// tuneFrame is connection.tune with frame_max fm.
func tuneFrame(fm uint32) []byte {
	p := binary.BigEndian.AppendUint16(nil, 10)
	p = binary.BigEndian.AppendUint16(p, 30)
	p = binary.BigEndian.AppendUint16(p, 2047)
	p = binary.BigEndian.AppendUint32(p, fm)
	p = binary.BigEndian.AppendUint16(p, 10)
	return rawFrame(frameMethod, 0, p)
}

// parsedHeader is what a vetted header frame says.
type parsedHeader struct {
	bodySize uint64
	headers  map[string][]byte // raw values, type octet first
	order    []string
	trailer  string // the message id after the headers
}

// parseHeader reads a header frame built by headerFrame, failing the test
// when any field is not fully readable.
func parseHeader(t *testing.T, f []byte) parsedHeader {
	t.Helper()
	if f[0] != frameHeader || f[len(f)-1] != frameEnd || int(binary.BigEndian.Uint32(f[3:7])) != len(f)-8 {
		t.Fatalf("not a well-formed header frame: % x", f[:min(len(f), 16)])
	}
	p := f[7 : len(f)-1]
	h := parsedHeader{bodySize: binary.BigEndian.Uint64(p[4:12]), headers: map[string][]byte{}}
	flags := binary.BigEndian.Uint16(p[12:14])
	at := 14 + 1 + int(p[14]) // content type
	if flags&flagHeaders != 0 {
		n := int(binary.BigEndian.Uint32(p[at : at+4]))
		tb := p[at+4 : at+4+n]
		if !scanContainer(tb, 0, true) {
			t.Fatalf("vetted table is still unreadable")
		}
		for i := 0; i < len(tb); {
			k := string(tb[i+1 : i+1+int(tb[i])])
			i += 1 + int(tb[i])
			l, _, _ := scanField(tb[i:], 0)
			h.headers[k] = tb[i : i+l]
			h.order = append(h.order, k)
			i += l
		}
		at += 4 + n
	}
	h.trailer = string(p[at+1 : at+1+int(p[at])])
	return h
}

func TestScanContainer_DepthAndCountAsTheClientReads(t *testing.T) {
	t.Parallel()
	// The top table is depth 0; amqp091 reads containers down to depth 32.
	for _, tc := range []struct {
		name string
		v    field
		ok   bool
	}{
		{"32 levels below the top table", nested(32), true},
		{"33 levels", nested(33), false},
		{"array of 8192", voids(8192), true},
		{"array of 8193", voids(8193), false},
		{"unknown type inside", fF(kv{"a", field{'Z', 1}}), false},
		{"length past the end inside", fF(kv{"a", field{'S', 0, 0, 0, 9, 'x'}}), false},
		{"every known type", fF(kv{"t", field{'t', 1}}, kv{"b", field{'b', 1}}, kv{"B", field{'B', 1}},
			kv{"s", field{'s', 0, 1}}, kv{"u", field{'u', 0, 1}}, kv{"I", fI(1)}, kv{"i", field{'i', 0, 0, 0, 1}},
			kv{"l", fL(1)}, kv{"f", field{'f', 0, 0, 0, 0}}, kv{"d", field{'d', 0, 0, 0, 0, 0, 0, 0, 0}},
			kv{"D", field{'D', 2, 0, 0, 0, 1}}, kv{"T", field{'T', 0, 0, 0, 0, 0, 0, 0, 1}}, kv{"V", field{'V'}},
			kv{"x", field{'x', 0, 0, 0, 1, 9}}, kv{"A", fA(fS("a"))}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, ok, sized := scanField(tc.v, 0)
			if !sized || n != len(tc.v) {
				t.Fatalf("scanField = %d bytes, sized %v; want %d, sized", n, sized, len(tc.v))
			}
			if ok != tc.ok {
				t.Errorf("readable = %v, want %v", ok, tc.ok)
			}
		})
	}
}

func TestVetHeader_ReadableHeadersPassAsTheyAre(t *testing.T) {
	// Not parallel: AllocsPerRun.
	f := headerFrame(1, 10, encTable(kv{"aggregate_id", fS("a-1")}, kv{"deep-but-fine", nested(32)}))
	out, withheld := vetHeader(f, 1<<20, 131072)
	if &out[0] != &f[0] || withheld != 0 {
		t.Fatalf("a readable header was rewritten (withheld %d)", withheld)
	}
	if allocs := testing.AllocsPerRun(100, func() { vetHeader(f, 1<<20, 131072) }); allocs != 0 {
		t.Errorf("vetting a readable header allocates %.0f times", allocs)
	}
}

func TestVetHeader_UnreadableHeadersAreLeftOutAndNamed(t *testing.T) {
	t.Parallel()
	table := encTable(
		kv{"aggregate_id", fS("a-1")},
		kv{"deep", nested(40)},
		kv{"eventfleet-attempt", fI(2)},
		kv{"wide", voids(9000)},
		kv{HeaderWithheldBody, fL(5)}, // forged: only a connection may say so
		kv{"last", fS("kept")},
	)
	out, withheld := vetHeader(headerFrame(3, 10, table), 0, 131072)
	if withheld != 0 {
		t.Fatalf("withheld %d with no limit", withheld)
	}
	h := parseHeader(t, out)
	if got := string(h.headers[HeaderUnreadable]); got != string(fS("deep,wide")) {
		t.Errorf("%s = %q, want deep,wide", HeaderUnreadable, got)
	}
	for _, k := range []string{"aggregate_id", "eventfleet-attempt", "last"} {
		if _, ok := h.headers[k]; !ok {
			t.Errorf("readable header %q was left out", k)
		}
	}
	for _, k := range []string{"deep", "wide", HeaderWithheldBody} {
		if _, ok := h.headers[k]; ok {
			t.Errorf("header %q still there", k)
		}
	}
	if h.bodySize != 10 || h.trailer != "id-1" {
		t.Errorf("body size %d, message id %q: the other properties changed", h.bodySize, h.trailer)
	}
}

func TestVetHeader_UnknownTypeLosesTheRestOfTheTable(t *testing.T) {
	t.Parallel()
	table := append(encTable(kv{"a", fS("x")}), appendShortstr(nil, "odd")...)
	table = append(table, 'Z', 1, 2, 3)
	h := parseHeader(t, must(vetHeader(headerFrame(1, 0, table), 0, 131072)))
	if got := string(h.headers[HeaderUnreadable]); got != string(fS("…")) {
		t.Errorf("%s = %q, want …", HeaderUnreadable, got)
	}
	if _, ok := h.headers["a"]; !ok {
		t.Error("the readable entry before the unknown type was lost")
	}
}

func TestVetHeader_EarlierUnreadableNamesAreKept(t *testing.T) {
	t.Parallel()
	table := encTable(kv{HeaderUnreadable, fS("old")}, kv{"deep", nested(33)})
	h := parseHeader(t, must(vetHeader(headerFrame(1, 0, table), 0, 131072)))
	if got := string(h.headers[HeaderUnreadable]); got != string(fS("old,deep")) {
		t.Errorf("%s = %q, want old,deep", HeaderUnreadable, got)
	}
}

func TestVetHeader_OversizedBodyIsWithheld(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		table []byte
	}{
		{"with headers", encTable(kv{"aggregate_id", fS("a-1")})},
		{"without headers", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, withheld := vetHeader(headerFrame(1, 1000, tc.table), 999, 131072)
			if withheld != 1000 {
				t.Fatalf("withheld = %d, want 1000", withheld)
			}
			h := parseHeader(t, out)
			if h.bodySize != 0 {
				t.Errorf("body size = %d, want 0", h.bodySize)
			}
			if got := string(h.headers[HeaderWithheldBody]); got != string(fL(1000)) {
				t.Errorf("%s = % x, want 1000", HeaderWithheldBody, got)
			}
			if tc.table != nil && h.headers["aggregate_id"] == nil {
				t.Error("aggregate_id was lost")
			}
			if h.trailer != "id-1" {
				t.Errorf("message id = %q: the properties after the headers moved", h.trailer)
			}
		})
	}
	if _, withheld := vetHeader(headerFrame(1, 1000, nil), 1000, 131072); withheld != 0 {
		t.Error("a body exactly at the limit was withheld")
	}
}

func TestVetHeader_RewriteFitsFrameMax(t *testing.T) {
	t.Parallel()
	const frameMax = 8192
	big := strings.Repeat("x", frameMax-80) // fits, but not with one more header
	table := encTable(kv{"big", fS(big)}, kv{"small", fS("s")})
	f := headerFrame(1, 50, table)
	if len(f) > frameMax {
		t.Fatalf("the frame itself is %d bytes, over frame_max", len(f))
	}
	out, _ := vetHeader(f, 10, frameMax) // withholding adds a header
	if len(out) > frameMax {
		t.Fatalf("rewritten frame is %d bytes, frame_max %d", len(out), frameMax)
	}
	h := parseHeader(t, out)
	if _, ok := h.headers["big"]; ok {
		t.Error("the largest header was kept, so the frame cannot fit")
	}
	if got := string(h.headers[HeaderUnreadable]); got != string(fS("big")) {
		t.Errorf("%s = %q, want big", HeaderUnreadable, got)
	}
	if h.headers["small"] == nil || h.headers[HeaderWithheldBody] == nil {
		t.Error("small header or the withheld marker missing")
	}
}

func must(out []byte, _ uint64) []byte { return out }

// readAll reads everything c gives, in reads of size n.
func readAll(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, n)
	for {
		k, err := c.Read(buf)
		got = append(got, buf[:k]...)
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
}

// serve writes stream to one end of a pipe and returns the other, vetted.
func serve(t *testing.T, stream []byte, maxBody int) net.Conn {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		_, _ = a.Write(stream)
		_ = a.Close()
	}()
	c := vetInbound(b, maxBody)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestInboundConn_PassesFramesThroughUnchanged(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("b"), 70000) // larger than the read buffer
	var stream []byte
	stream = append(stream, tuneFrame(131072)...)
	stream = append(stream, rawFrame(frameMethod, 1, []byte{0, 60, 0, 60, 1, 2, 3})...)
	stream = append(stream, headerFrame(1, uint64(len(body)), encTable(kv{"a", fS("b")}))...)
	stream = append(stream, rawFrame(frameBody, 1, body)...)
	stream = append(stream, rawFrame(8, 0, nil)...) // heartbeat
	for _, n := range []int{1, 7, 4096, 100000} {
		if got := readAll(t, serve(t, stream, 1<<20), n); !bytes.Equal(got, stream) {
			t.Errorf("reads of %d: %d bytes came out of %d, not the same", n, len(got), len(stream))
		}
	}
}

func TestInboundConn_DiscardsWithheldBodies(t *testing.T) {
	t.Parallel()
	var stream, want []byte
	add := func(f []byte, kept bool) {
		stream = append(stream, f...)
		if kept {
			want = append(want, f...)
		} else {
			want = append(want, heartbeatFrame...) // keeps amqp091's read deadline alive
		}
	}
	add(tuneFrame(131072), true)
	add(rawFrame(frameMethod, 1, []byte{0, 60, 0, 60}), true)
	big := headerFrame(1, 300, nil)
	stream = append(stream, big...)
	want = append(want, must(vetHeader(big, 100, 131072))...)
	add(rawFrame(frameBody, 1, bytes.Repeat([]byte("x"), 200)), false)
	add(rawFrame(frameMethod, 2, []byte{0, 60, 0, 60}), true) // another channel, between
	add(headerFrame(2, 5, nil), true)
	add(rawFrame(frameBody, 2, []byte("small")), true)
	add(rawFrame(frameBody, 1, bytes.Repeat([]byte("x"), 100)), false)
	add(rawFrame(frameMethod, 1, []byte{0, 60, 0, 60}), true)
	add(headerFrame(1, 3, nil), true)
	add(rawFrame(frameBody, 1, []byte("abc")), true) // channel 1's next body passes again
	if got := readAll(t, serve(t, stream, 100), 4096); !bytes.Equal(got, want) {
		t.Errorf("got %d bytes, want %d", len(got), len(want))
	}
}

func TestInboundConn_ProtocolHeaderPassesRaw(t *testing.T) {
	t.Parallel()
	stream := []byte("AMQP\x00\x00\x09\x01")
	if got := readAll(t, serve(t, stream, 0), 3); !bytes.Equal(got, stream) {
		t.Errorf("got %q", got)
	}
}

// A table at amqp091's entry limit plus our markers must still be readable:
// the rewrite trims it to leave room for them.
func TestVetInbound_WideTableAndWithheldBody(t *testing.T) {
	t.Parallel()
	for _, n := range []int{8191, 8192, 8300} {
		var entries []kv
		for i := range n {
			entries = append(entries, kv{fmt.Sprintf("k%05d", i), field{'V'}})
		}
		hf := headerFrame(1, 100, encTable(entries...))
		d, err := getThrough(hf, 100, func(c net.Conn) net.Conn { return vetInbound(c, 10) })
		if err != nil {
			t.Fatalf("%d entries and a withheld body: %v", n, err)
		}
		if d.Headers[HeaderWithheldBody] != int64(100) || len(d.Headers) > readerMaxElements {
			t.Errorf("%d entries: %d headers, withheld %v", n, len(d.Headers), d.Headers[HeaderWithheldBody])
		}
	}
}

// Bytes after the last property (padding amqp091 skips) are not copied into
// a rewrite, which must fit frame_max.
func TestVetHeader_PaddingAfterPropertiesIsDropped(t *testing.T) {
	t.Parallel()
	f := headerFrame(1, 50, encTable(kv{"deep", nested(33)}))
	pad := bytes.Repeat([]byte{0}, frameMinSize-len(f))
	payload := append(append([]byte{}, f[frameHeaderLen:len(f)-1]...), pad...)
	f = rawFrame(frameHeader, 1, payload)
	out, _ := vetHeader(f, 10, frameMinSize)
	if len(out) > frameMinSize {
		t.Fatalf("rewritten frame is %d bytes, over frame_max %d", len(out), frameMinSize)
	}
	if h := parseHeader(t, out); h.trailer != "id-1" || h.headers[HeaderWithheldBody] == nil {
		t.Errorf("properties after the headers lost: %+v", h)
	}
}
