package amqp

import (
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
)

// A broker address list is one string: URLs separated by commas, each with
// its own user, password, vhost and TLS parameters (the nodes of one
// cluster, or several hosted endpoints of one broker). Every Config's URL,
// Dial and AMQP_URL take one. splitURLs is the only place it is cut.

// splitURLs cuts s into its URLs at its commas, except those in a user name
// or password (before the "@"; a piece after one that does not start with
// a scheme continues that URL), which have always been allowed there
// unencoded. Anywhere else a comma ends a URL. An empty element
// (",," or a comma at either end) is an error naming its position. The
// elements are not validated here; see validateURL.
func splitURLs(s string) ([]string, error) {
	urls := splitList(s)
	for i, u := range urls {
		if u == "" {
			return nil, &URLError{Element: i + 1,
				Problem: "empty: remove the extra comma (a comma in a password may be written %2C)"}
		}
	}
	return urls, nil
}

// splitList is splitURLs without the check: an empty element is "".
func splitList(s string) []string {
	pieces := strings.Split(s, ",")
	if len(pieces) == 1 {
		// One URL keeps the errors it has always had, spaces included.
		return pieces
	}
	urls := make([]string, 0, len(pieces))
	for i, p := range pieces {
		t := strings.TrimSpace(p)
		if i > 0 && t != "" && !hasScheme(t) && inUserInfo(urls[len(urls)-1]) {
			urls[len(urls)-1] += "," + p
			continue
		}
		urls = append(urls, t)
	}
	if len(urls) == 1 {
		urls[0] = s
	}
	return urls
}

// inUserInfo reports whether u, a URL cut short, ends inside its user
// name or password: after "://" and before any "@", "/", "?" or "#".
func inUserInfo(u string) bool {
	_, rest, ok := strings.Cut(u, "://")
	return ok && !strings.ContainsAny(rest, "@/?#")
}

func hasScheme(s string) bool {
	s = strings.ToLower(s)
	return strings.HasPrefix(s, "amqp://") || strings.HasPrefix(s, "amqps://")
}

// nodeName is how logs and /readyz name the node of u: host:port, with the
// port amqp091 would dial (5672, or 5671 for amqps). u has been validated;
// if it cannot be parsed, its redacted form stands in.
func nodeName(u string) string {
	uri, err := parseURL(u)
	if err != nil {
		return redactOne(u)
	}
	return net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
}

// endpoints is the cursor of one reconnect loop over a validated address
// list: it starts at a random element, so that a fleet given the same list
// spreads over the nodes, and moves to the next element after each failure
// (a failed connect, or a connection lost). lifecycle.Loop's Addresses is
// len(urls), so that each address is tried once before a backoff.
type endpoints struct {
	urls  []string
	nodes []string // nodeName of each URL

	mu  sync.Mutex
	cur int // the element in use, or the next to try; written by the loop, read by Node
}

// newEndpoints returns the cursor over u (a validated list), or nil with
// the list's error.
func newEndpoints(u string) (*endpoints, error) {
	urls, err := splitURLs(u)
	if err != nil {
		return nil, err
	}
	e := &endpoints{urls: urls, nodes: make([]string, len(urls)), cur: rand.IntN(len(urls))}
	for i, u := range urls {
		e.nodes[i] = nodeName(u)
	}
	return e, nil
}

// len is the number of addresses.
func (e *endpoints) len() int { return len(e.urls) }

// current is the URL to dial now, and its node name.
func (e *endpoints) current() (url, node string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.urls[e.cur], e.nodes[e.cur]
}

// node is the node name of the element in use or next to try.
func (e *endpoints) node() string {
	_, n := e.current()
	return n
}

// failed moves to the next address and returns the node that failed.
func (e *endpoints) failed() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.nodes[e.cur]
	e.cur = (e.cur + 1) % len(e.urls)
	return n
}
