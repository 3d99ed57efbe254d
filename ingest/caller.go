package ingest

import "net/http"

// callerName names who sent r: the rate limit's bucket and the access log's
// "caller". It is the authenticated key's caller, one of the fixed set of
// names in the keys, so the buckets stay as few as the keys; under AuthNone
// it is "" for everyone, one anonymous caller sharing one bucket. It is
// never the remote address: behind a proxy that is the proxy's, and a
// client can take as many as it has addresses.
func callerName(r *http.Request) string {
	c, _ := callerOf(r.Context())
	return c.Name
}
