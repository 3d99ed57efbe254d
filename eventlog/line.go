package eventlog

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/eventfleet/eventfleet/event"
)

// appendLine appends l's line, ended by "\n", to buf: the bytes
// json.Encoder with SetEscapeHTML(false) writes for l, without its
// reflection. Strings that need escaping are left to encoding/json, and Data
// is compacted by event.CompactJSON (encoding/json's bytes, checked by its
// fuzz test), so the output cannot drift (FuzzAppendLine compares the two).
// An error is Data that is not JSON; buf then holds a partial line.
func appendLine(buf *bytes.Buffer, l *Line) error {
	buf.WriteString(`{"id":`)
	appendString(buf, l.ID)
	buf.WriteString(`,"type":`)
	appendString(buf, l.Type)
	buf.WriteString(`,"aggregate_id":`)
	appendString(buf, l.AggregateID)
	if l.Source != "" {
		buf.WriteString(`,"source":`)
		appendString(buf, l.Source)
	}
	if !l.Time.IsZero() {
		buf.WriteString(`,"time":"`)
		var tb [len(time.RFC3339Nano) + 8]byte
		buf.Write(l.Time.AppendFormat(tb[:0], time.RFC3339Nano))
		buf.WriteByte('"')
	}
	buf.WriteString(`,"attempt":`)
	var ib [20]byte
	buf.Write(strconv.AppendInt(ib[:0], int64(l.Attempt), 10))
	buf.WriteString(`,"data":`)
	if l.Data == nil {
		buf.WriteString("null")
	} else if err := event.CompactJSON(buf, l.Data); err != nil {
		return err
	}
	buf.WriteString("}\n")
	return nil
}

// appendString appends s as a JSON string. Printable ASCII without '"' and
// '\' is copied as it is; anything else goes through encoding/json.
func appendString(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			appendEscaped(buf, s)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

// appendEscaped is appendString's way for strings that need escaping.
func appendEscaped(buf *bytes.Buffer, s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	buf.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}
