package main

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// termSafe is s with every byte a terminal would act on escaped: C0 controls
// (tab and newline too), DEL and C1 controls as Go escapes (\x1b, \n,
// \u009b), invalid UTF-8 bytes as \xff. Everything "worker dlq" prints in
// text comes from messages that anyone who can publish may have shaped; raw,
// an escape sequence could clear the screen or a newline forge a line.
func termSafe(s string) string {
	i := unsafeIndex(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	rest := s[i:]
	for len(rest) > 0 {
		r, size := utf8.DecodeRuneInString(rest)
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(rest[0])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(rest[0])&0xf, 16))
		case isControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(rest[:size])
		}
		rest = rest[size:]
	}
	return b.String()
}

// unsafeIndex is the index of the first byte termSafe must escape, or -1.
func unsafeIndex(s string) int {
	for i, r := range s {
		if isControl(r) || (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) {
			return i
		}
	}
	return -1
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }
