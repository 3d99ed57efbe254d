package amqp

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strings"
)

// AMQP 0-9-1 framing (spec §2.3.5, §4.2.6).
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameEnd       = 0xCE
	frameHeaderLen = 7
	// frameMinSize is AMQP's smallest frame_max: every peer takes frames
	// this large, so it bounds a rewritten frame before the tune is seen.
	frameMinSize = 4096
	classBasic   = 60
	flagHeaders  = 0x2000
)

// What amqp091-go (v1.16, read.go) refuses in a field table. A message the
// broker accepted with such a header makes amqp091 close the whole connection
// with FRAME_ERROR (501) when it is delivered, again on every redelivery: on a
// classic queue for ever, on a quorum queue until the delivery limit.
const (
	readerMaxDepth    = 32
	readerMaxElements = 8192
)

// heartbeatFrame stands in for each discarded body frame (see frame).
var heartbeatFrame = []byte{8, 0, 0, 0, 0, 0, 0, frameEnd}

// inboundConn is the connection amqp091 reads from. It passes the broker's
// frames through unchanged except two kinds of content header, which it
// rewrites before amqp091 sees them:
//
//   - headers amqp091 cannot read (nested deeper than it reads, more entries
//     than it takes, an unknown field type) are left out and named in
//     HeaderUnreadable, so the rest of the message is still
//     delivered instead of killing the connection;
//   - a body larger than maxBody is withheld: the header says the body is
//     empty and HeaderWithheldBody gives its real size, and the
//     body frames are discarded as they arrive, so the body is never held
//     in memory.
//
// Everything else, including every body frame that is not withheld, goes
// through as read. Only the read side is touched.
type inboundConn struct {
	net.Conn
	r       *bufio.Reader
	maxBody uint64 // 0: no limit

	// Read's state; only the goroutine calling Read (amqp091's reader) uses it.
	frameMax uint32            // from connection.tune; 0 before it
	out      []byte            // the vetted header frame still to hand out
	pass     int               // bytes of the current frame to hand out as read
	skip     map[uint16]uint64 // withheld body bytes still to come, by channel
	buf      []byte            // header frames are read into it
	state    inboundState
}

// inboundState says how the bytes from the peer are read.
type inboundState int

const (
	inboundStart  inboundState = iota // nothing read yet
	inboundFrames                     // AMQP frames
	inboundRaw                        // not frames (the peer refused our protocol version): passed as they are
)

// vetInbound wraps c (the plaintext connection, above TLS) so that no
// content header the client cannot read, and no body over maxBody bytes
// (0: no limit), reaches amqp091.
func vetInbound(c net.Conn, maxBody int) net.Conn {
	return &inboundConn{
		Conn:    c,
		r:       bufio.NewReaderSize(c, 32<<10),
		maxBody: uint64(max(maxBody, 0)),
		skip:    map[uint16]uint64{},
	}
}

func (c *inboundConn) Read(p []byte) (int, error) {
	for {
		switch {
		case len(c.out) > 0:
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		case c.state == inboundRaw:
			return c.r.Read(p)
		case c.pass > 0:
			if len(p) > c.pass {
				p = p[:c.pass]
			}
			n, err := c.r.Read(p)
			c.pass -= n
			return n, err
		}
		if err := c.frame(); err != nil {
			return 0, err
		}
	}
}

// ConnectionState is the TLS state of the connection below, for
// amqp091.Connection.ConnectionState; empty without TLS.
func (c *inboundConn) ConnectionState() tls.ConnectionState {
	if t, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return t.ConnectionState()
	}
	return tls.ConnectionState{}
}

// frame looks at the next frame's header and decides how it is handed on.
func (c *inboundConn) frame() error {
	h, err := c.r.Peek(frameHeaderLen)
	if err != nil {
		return err
	}
	if c.state == inboundStart {
		c.state = inboundFrames
		if h[0] == 'A' { // "AMQP…": the server's protocol header, then it closes
			c.state = inboundRaw
			return nil
		}
	}
	typ, ch, size := h[0], binary.BigEndian.Uint16(h[1:3]), binary.BigEndian.Uint32(h[3:7])
	whole := frameHeaderLen + int(size) + 1
	switch typ {
	case frameBody:
		if left, ok := c.skip[ch]; ok {
			if _, err := c.r.Discard(whole); err != nil {
				return err
			}
			if uint64(size) >= left {
				delete(c.skip, ch)
			} else {
				c.skip[ch] = left - uint64(size)
			}
			// amqp091 renews its read deadline (heartbeat × 1.5) per frame
			// it reads: a withheld body that streams in slowly must not
			// look like a silent broker.
			c.out = heartbeatFrame
			return nil
		}
	case frameHeader:
		// Larger than frame_max: amqp091 refuses it itself.
		if c.frameMax > 0 && size <= c.frameMax {
			return c.header(ch, whole)
		}
	case frameMethod:
		if len(c.skip) > 0 {
			delete(c.skip, ch) // a method interrupts a content
		}
		if ch == 0 && size >= 12 {
			c.tune()
		}
	}
	c.pass = whole
	return nil
}

// tune notes frame_max from connection.tune: a rewritten header must fit it.
// Only called for a method frame of at least 12 payload bytes, so the peek
// cannot wait for bytes of the next frame.
func (c *inboundConn) tune() {
	b, err := c.r.Peek(frameHeaderLen + 10)
	if err != nil {
		return
	}
	p := b[frameHeaderLen:]
	if binary.BigEndian.Uint16(p[0:2]) == 10 && binary.BigEndian.Uint16(p[2:4]) == 30 {
		// The client offers clientFrameMax, so frames never exceed the
		// smaller of the two (0 from the server means no limit).
		// A smaller one than AMQP's minimum is read as the minimum, as
		// amqp091 does.
		switch fm := binary.BigEndian.Uint32(p[6:10]); {
		case fm == 0 || fm > clientFrameMax:
			c.frameMax = clientFrameMax
		case fm < frameMinSize:
			c.frameMax = frameMinSize
		default:
			c.frameMax = fm
		}
	}
}

// header reads a whole content header frame and hands on its vetted form.
func (c *inboundConn) header(ch uint16, whole int) error {
	if cap(c.buf) < whole {
		c.buf = make([]byte, whole)
	}
	b := c.buf[:whole]
	if _, err := io.ReadFull(c.r, b); err != nil {
		return err
	}
	out, withheld := vetHeader(b, c.maxBody, int(c.frameMax))
	if withheld > 0 {
		c.skip[ch] = withheld
	}
	c.out = out
	return nil
}

// vetHeader returns frame (a whole content header frame) as amqp091 may read
// it: the frame itself when nothing needs changing, else a rewritten copy.
// withheld is the size of a body left out (its frames must be discarded).
// A frame whose property list does not parse is returned as it is: it is not
// the broker's doing, and amqp091 reports it.
func vetHeader(frame []byte, maxBody uint64, frameMax int) (out []byte, withheld uint64) {
	payload := frame[frameHeaderLen : len(frame)-1]
	if len(payload) < 14 || binary.BigEndian.Uint16(payload[0:2]) != classBasic {
		return frame, 0
	}
	bodySize := binary.BigEndian.Uint64(payload[4:12])
	flags := binary.BigEndian.Uint16(payload[12:14])
	// The properties before the headers: content type, content encoding.
	at := 14
	for _, f := range []uint16{0x8000, 0x4000} {
		if flags&f != 0 {
			if at >= len(payload) || at+1+int(payload[at]) > len(payload) {
				return frame, 0
			}
			at += 1 + int(payload[at])
		}
	}
	withhold := maxBody > 0 && bodySize > maxBody
	headersAt, headersEnd := at, at
	var v tableVet
	if flags&flagHeaders != 0 {
		if at+4 > len(payload) {
			return frame, 0
		}
		n := int(binary.BigEndian.Uint32(payload[at : at+4]))
		if n < 0 || n > len(payload)-at-4 {
			return frame, 0
		}
		headersEnd = at + 4 + n
		v = vetTable(payload[at+4:headersEnd], withhold)
	}
	if !withhold && !v.changed() {
		return frame, 0
	}
	// The properties after the headers, without bytes past them (padding
	// amqp091 skips): they are copied, and must not crowd out the table.
	end, ok := propertiesEnd(payload, headersEnd, flags)
	if !ok {
		return frame, 0
	}
	payload = payload[:end]
	if withhold {
		withheld = bodySize
		bodySize = 0
	}
	if frameMax < frameMinSize {
		frameMax = frameMinSize
	}
	// Room for the table: the frame without its old headers.
	room := frameMax - frameHeaderLen - 1 - (len(payload) - (headersEnd - headersAt)) - 4
	table := v.rebuild(withheld, room)

	np := make([]byte, 0, len(payload)-(headersEnd-headersAt)+4+len(table))
	np = append(np, payload[:12]...)
	binary.BigEndian.PutUint64(np[4:12], bodySize)
	np = binary.BigEndian.AppendUint16(np, flags|flagHeaders)
	np = append(np, payload[14:headersAt]...)
	np = binary.BigEndian.AppendUint32(np, uint32(len(table)))
	np = append(np, table...)
	np = append(np, payload[headersEnd:]...)

	out = make([]byte, 0, frameHeaderLen+len(np)+1)
	out = append(out, frame[:3]...) // type, channel
	out = binary.BigEndian.AppendUint32(out, uint32(len(np)))
	out = append(out, np...)
	out = append(out, frameEnd)
	return out, withheld
}

// propertiesEnd is where the properties after the headers end, from at.
func propertiesEnd(payload []byte, at int, flags uint16) (int, bool) {
	for bit := uint16(0x1000); bit >= 0x0004; bit >>= 1 {
		if flags&bit == 0 {
			continue
		}
		switch bit {
		case 0x1000, 0x0800: // delivery mode, priority
			at++
		case 0x0040: // timestamp
			at += 8
		default: // short strings
			if at >= len(payload) {
				return 0, false
			}
			at += 1 + int(payload[at])
		}
		if at > len(payload) {
			return 0, false
		}
	}
	return at, true
}

// tableEntry is one entry of a header table, as encoded.
type tableEntry struct {
	key string
	raw []byte // the whole entry: key and value
}

// tableVet is what vetTable found in a top-level header table.
type tableVet struct {
	keep       []tableEntry // readable entries, in order; nil when nothing changes
	unreadable []string     // names of entries left out
	rest       bool         // entries after an unknown field type were lost too
	stale      bool         // it carried a marker of ours that must not pass
	tooMany    bool         // more entries than amqp091 takes in one table
	prior      string       // an earlier HeaderUnreadable value
}

func (v tableVet) changed() bool { return len(v.unreadable) > 0 || v.rest || v.stale || v.tooMany }

// vetTable walks a top-level header table (its bytes after the length) the
// way amqp091 reads it. The common case, nothing to change, allocates
// nothing; entries are copied out only when the table must be rebuilt
// (rebuild: it will be, whatever it holds).
func vetTable(b []byte, rebuild bool) tableVet {
	var v tableVet
	v.walk(b, false)
	if rebuild || v.changed() {
		v = tableVet{}
		v.walk(b, true)
	}
	return v
}

func (v *tableVet) walk(b []byte, collect bool) {
	count := 0
	for at := 0; at < len(b); {
		start := at
		if at+1+int(b[at]) > len(b) {
			v.rest = true
			return
		}
		key := b[at+1 : at+1+int(b[at])]
		at += 1 + int(b[at])
		valueAt := at
		n, ok, sized := scanField(b[at:], 0)
		if !sized {
			v.rest = true
			return
		}
		at += n
		if count++; count > readerMaxElements {
			v.tooMany = true // rebuild trims the table
		}
		switch {
		case !ok:
			v.unreadable = append(v.unreadable, string(key))
		case string(key) == HeaderWithheldBody:
			v.stale = true // only this connection may say a body was withheld
		case !collect:
		case string(key) == HeaderUnreadable:
			// Named again, with what is left out now.
			v.prior, _ = decodeLongstr(b[valueAt:at])
		default:
			v.keep = append(v.keep, tableEntry{string(key), b[start:at]})
		}
	}
}

// rebuild encodes the kept entries and our markers within room bytes,
// leaving out the largest kept entries if they do not fit (named as
// unreadable too: they could not be handed on whole).
func (v tableVet) rebuild(withheld uint64, room int) []byte {
	keep := slices.Clone(v.keep)
	names := v.unreadable
	// amqp091 takes at most readerMaxElements entries, our markers included.
	markers := 1 // HeaderUnreadable: trimming below names what it trims
	if withheld > 0 {
		markers++
	}
	if len(keep)+markers > readerMaxElements {
		cut := readerMaxElements - markers
		for _, e := range keep[cut:] {
			names = append(names, e.key)
		}
		keep = keep[:cut]
	}
	for {
		marker := unreadableValue(v.prior, names, v.rest)
		size := 0
		for _, e := range keep {
			size += len(e.raw)
		}
		if marker != "" {
			size += 1 + len(HeaderUnreadable) + 5 + len(marker)
		}
		if withheld > 0 {
			size += 1 + len(HeaderWithheldBody) + 9
		}
		if len(keep) == 0 && size > room && marker != "" {
			// Only our markers, and still too large (a frame full of other
			// properties): the shortest marker that still says so.
			marker = "…"
		}
		if size <= room || len(keep) == 0 {
			var t []byte
			for _, e := range keep {
				t = append(t, e.raw...)
			}
			if marker != "" {
				t = appendShortstr(t, HeaderUnreadable)
				t = append(t, 'S')
				t = binary.BigEndian.AppendUint32(t, uint32(len(marker)))
				t = append(t, marker...)
			}
			if withheld > 0 {
				t = appendShortstr(t, HeaderWithheldBody)
				t = append(t, 'l')
				t = binary.BigEndian.AppendUint64(t, withheld)
			}
			return t
		}
		largest := 0
		for i, e := range keep {
			if len(e.raw) > len(keep[largest].raw) {
				largest = i
			}
		}
		names = append(slices.Clone(names), keep[largest].key)
		keep = slices.Delete(keep, largest, largest+1)
	}
}

// unreadableValue is HeaderUnreadable's value: the names left out, after
// those an earlier hop named, bounded like an error message.
func unreadableValue(prior string, names []string, rest bool) string {
	all := names
	if prior != "" {
		all = append([]string{prior}, names...)
	}
	s := strings.Join(all, ",")
	if rest {
		if s != "" {
			s += ","
		}
		s += "…"
	}
	return TruncateError(s)
}

// scanField measures the field value at b (its type octet first) as
// amqp091 reads it at nesting depth depth: n bytes long, ok when amqp091
// reads it, sized when n is known at all (an unknown type or a length past
// the end leaves the rest of the table unreadable).
func scanField(b []byte, depth int) (n int, ok, sized bool) {
	if len(b) == 0 {
		return 0, false, false
	}
	fixed := 0
	switch b[0] {
	case 'V':
		return 1, true, true
	case 't', 'b', 'B':
		fixed = 1
	case 's', 'u':
		fixed = 2
	case 'I', 'i', 'f':
		fixed = 4
	case 'D':
		fixed = 5
	case 'l', 'd', 'T':
		fixed = 8
	case 'S', 'x', 'A', 'F':
		if len(b) < 5 {
			return 0, false, false
		}
		l := binary.BigEndian.Uint32(b[1:5])
		if uint64(l) > uint64(len(b)-5) {
			return 0, false, false
		}
		n = 5 + int(l)
		switch b[0] {
		case 'A':
			return n, scanContainer(b[5:n], depth+1, false), true
		case 'F':
			return n, scanContainer(b[5:n], depth+1, true), true
		}
		return n, true, true
	default:
		return 0, false, false
	}
	if len(b) < 1+fixed {
		return 0, false, false
	}
	return 1 + fixed, true, true
}

// scanContainer reports whether amqp091 reads the array or table (named
// entries) whose content is b, at depth.
func scanContainer(b []byte, depth int, named bool) bool {
	if depth > readerMaxDepth {
		return false
	}
	count := 0
	for at := 0; at < len(b); count++ {
		if count >= readerMaxElements {
			return false
		}
		if named {
			if at+1+int(b[at]) > len(b) {
				return false
			}
			at += 1 + int(b[at])
		}
		n, ok, sized := scanField(b[at:], depth)
		if !ok || !sized {
			return false
		}
		at += n
	}
	return true
}

func appendShortstr(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// decodeLongstr reads an 'S' field value (type octet first).
func decodeLongstr(b []byte) (string, bool) {
	if len(b) < 5 || b[0] != 'S' || int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5 {
		return "", false
	}
	return string(b[5:]), true
}
