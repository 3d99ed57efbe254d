package amqp

import (
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A broker address list is one string: URLs separated by commas, each with
// its own user, password, vhost and TLS parameters (the nodes of one
// cluster, or several hosted endpoints of one broker). Every Config's URL,
// Dial and AMQP_URL take one. splitURLs is the only place it is cut.

// splitURLs cuts s into its URLs at each comma that a scheme follows
// ("amqp://" or "amqps://", after optional spaces). Any other comma stays
// in its URL, as it always could (in a password, say, with an "@" or
// another comma beside it): a string with no such comma is one URL, read
// exactly as before lists existed. In a list, an empty element (a comma at
// the start, or blank between two commas before a scheme) is an error
// naming its position. The elements are not validated here; see
// validateURL.
func splitURLs(s string) ([]string, error) {
	urls := splitList(s)
	for i, u := range urls {
		if u == "" && len(urls) > 1 {
			return nil, &URLError{Element: i + 1,
				Problem: "empty: remove the extra comma (a comma in a password may be written %2C)"}
		}
	}
	return urls, nil
}

// splitList is splitURLs without the check: an empty element is "".
func splitList(s string) []string {
	pieces := strings.Split(s, ",")
	starts := func(i int) bool { return hasScheme(strings.TrimSpace(pieces[i])) }
	// blankToScheme: pieces i… are blank up to one that starts a URL.
	blankToScheme := func(i int) bool {
		for ; i < len(pieces); i++ {
			if starts(i) {
				return true
			}
			if strings.TrimSpace(pieces[i]) != "" {
				return false
			}
		}
		return false
	}
	if !slices.ContainsFunc(pieces[1:], func(p string) bool { return hasScheme(strings.TrimSpace(p)) }) {
		return []string{s} // one URL keeps the errors it has always had, spaces included
	}
	urls := []string{pieces[0]}
	for i := 1; i < len(pieces); i++ {
		if starts(i) || blankToScheme(i) {
			urls = append(urls, pieces[i])
			continue
		}
		urls[len(urls)-1] += "," + pieces[i]
	}
	for i := range urls {
		urls[i] = strings.TrimSpace(urls[i])
	}
	return urls
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
