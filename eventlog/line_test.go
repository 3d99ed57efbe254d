package eventlog

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// encodingJSON is the line as encoding/json writes it: the output contract
// appendLine must keep byte for byte.
func encodingJSON(l *Line) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(l)
	return b.Bytes(), err
}

func checkLine(t *testing.T, l Line) {
	t.Helper()
	want, wantErr := encodingJSON(&l)
	var got bytes.Buffer
	err := appendLine(&got, &l)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("appendLine error %v, encoding/json error %v, for %#v", err, wantErr, l)
	}
	if err == nil && !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("appendLine wrote\n%s\nencoding/json writes\n%s", got.Bytes(), want)
	}
}

func TestAppendLine_MatchesEncodingJSON(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for _, l := range []Line{
		{ID: "0190", Type: "CardAdded", AggregateID: "lib-1", Source: "catalog", Time: t0, Attempt: 1, Data: json.RawMessage(`{"card":7}`)},
		{ID: "a", Type: "T", Attempt: 3, Data: json.RawMessage("{\n  \"pretty\" : [1, 2 ,\t3]\n}")},
		{ID: "quote\"back\\slash", Type: "tab\tnl\ncr\r", AggregateID: "<html>&amp;", Source: "ünïcode \u2028\u2029", Attempt: -1,
			Time: t0.Add(123456789 * time.Nanosecond), Data: json.RawMessage(`"s"`)},
		{ID: "bad utf8 \xff\xfe", Type: "\x00\x01\x1f\x7f", Data: json.RawMessage(`null`)},
		{ID: "nil data", Data: nil},
		{ID: "empty data", Data: json.RawMessage{}},
		{ID: "not json", Data: json.RawMessage(`{not json`)},
		{ID: "two values", Data: json.RawMessage(`1 2`)},
		{ID: "year 0", Time: time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC), Data: json.RawMessage(`[]`)},
		{ID: "year 9999", Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), Data: json.RawMessage(`[]`)},
		{ID: "data with html", Data: json.RawMessage(`{"a":"<b>&</b>","u":"\u2028"}`)},
	} {
		checkLine(t, l)
	}
}

func FuzzAppendLine(f *testing.F) {
	f.Add("0190", "CardAdded", "lib-1", "catalog", int64(1764410400), int64(5), 1, []byte(`{"card":7}`))
	f.Add("q\"\\", "\t\n", "<&>", "\u2028", int64(-62167219200), int64(0), -5, []byte("{\n \"a\" : [1,2]\n}"))
	f.Add("\xff", "", "", "", int64(0), int64(0), 0, []byte(`{bad`))
	for _, d := range []string{"01", "[1,]", `"\ud800"`, "{} {}", " 1 ", "\"\xff\"", `"\u2028<&>"`} {
		f.Add("id", "T", "", "", int64(0), int64(0), 1, []byte(d))
	}
	f.Fuzz(func(t *testing.T, id, typ, agg, src string, sec, nsec int64, attempt int, data []byte) {
		l := Line{ID: id, Type: typ, AggregateID: agg, Source: src, Attempt: attempt, Data: data,
			// Handle gives appendLine only what showable lets through.
			Time: showable(time.Unix(sec, nsec))}
		checkLine(t, l)
	})
}
