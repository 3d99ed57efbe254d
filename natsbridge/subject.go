package natsbridge

import (
	"fmt"
	"strings"
)

// typePrefix is the literal part of a subject pattern before its first
// wildcard token, dot included: "events." for "events.*" and "events.>".
// The event type is what a message's subject has after it, so `events.>`
// carries dotted types ("billing.InvoicePaid") and "events.*.v1" types like
// "CardAdded.v1".
func typePrefix(pattern string) (string, error) {
	if pattern == "" {
		return "", fmt.Errorf("empty")
	}
	if strings.ContainsAny(pattern, " \t\r\n") {
		return "", fmt.Errorf("must not contain whitespace")
	}
	tokens := strings.Split(pattern, ".")
	first := -1
	for i, tok := range tokens {
		switch {
		case tok == "":
			return "", fmt.Errorf("has an empty token (two dots, or a dot at an end)")
		case tok == ">" && i != len(tokens)-1:
			return "", fmt.Errorf("'>' must be the last token")
		case tok == "*" || tok == ">":
			if first < 0 {
				first = i
			}
		case strings.ContainsAny(tok, "*>"):
			return "", fmt.Errorf("a wildcard must be a whole token (events.*, not events.Card*)")
		}
	}
	if first < 0 {
		return "", fmt.Errorf("needs a wildcard (* or >): the event type is the part of the subject it matches")
	}
	if first == 0 {
		// ">" or "*.x" would take every subject of the account as an
		// event: replies, other applications', JetStream's own API.
		return "", fmt.Errorf("needs a literal first token (events.*, not * or >): a pattern starting with a wildcard takes every subject on the server, replies and JetStream's API included")
	}
	return strings.Join(tokens[:first], ".") + ".", nil
}

// subjectType is the event type a message on subject carries: subject
// without prefix.
func subjectType(prefix, subject string) string {
	if !strings.HasPrefix(subject, prefix) {
		return ""
	}
	return subject[len(prefix):]
}
