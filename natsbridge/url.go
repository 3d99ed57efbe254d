package natsbridge

import (
	"net/url"
	"strings"
)

// RedactURL returns u, a NATS URL or several separated by commas, with
// every password, and every token (a user without a password), replaced
// by "xxxxx", for logs and errors. A URL that does not parse is hidden
// whole rather than echoed.
func RedactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactOne(u string) string {
	if u == "" {
		return u
	}
	if !strings.Contains(u, "://") {
		if strings.Contains(u, "@") {
			return "<unparsable NATS URL>"
		}
		return u // host:port, as nats.go accepts
	}
	p, err := url.Parse(u)
	if err != nil || strings.Contains(p.Host+p.EscapedPath()+p.RawQuery+p.Fragment, "@") {
		return "<unparsable NATS URL>"
	}
	if p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); ok {
		p.User = url.UserPassword(p.User.Username(), "xxxxx")
	} else {
		p.User = url.User("xxxxx") // a token
	}
	return p.String()
}

// validURL reports why u cannot be a NATS URL list, or "".
func validURL(u string) string {
	for _, p := range strings.Split(u, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return "has an empty element"
		}
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		pu, err := url.Parse(p)
		if err != nil || pu.Host == "" || strings.Contains(pu.Host, "@") {
			return "not a NATS URL; use nats://[user:password@]host:4222"
		}
		if strings.Contains(pu.EscapedPath()+pu.RawQuery+pu.Fragment, "@") {
			return "an '@' after the host: percent-encode the password's special characters (%40 for @, %2F for /)"
		}
		switch pu.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return "scheme " + pu.Scheme + " unknown; use nats://, tls://, ws:// or wss://"
		}
	}
	return ""
}
