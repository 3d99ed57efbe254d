//go:build race

package proctest

// Race is true when the tests run with -race.
const Race = true
