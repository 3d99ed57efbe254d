// Package proctest helps tests that run eventfleet's binaries as processes,
// the way they are deployed: it builds a command once (with -race when the
// tests run with it, so a race in the binary fails them too) and collects a
// process's output while the test reads it.
package proctest
