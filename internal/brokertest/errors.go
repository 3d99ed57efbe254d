package brokertest

import "errors"

// errNoMajority is why no leader is known when no node that answered saw a
// majority of the cluster running.
var errNoMajority = errors.New("no node answered that sees a majority running")
