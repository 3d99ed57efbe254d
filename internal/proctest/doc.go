// Package proctest helps tests that run eventfleet's binaries as processes,
// the way they are deployed. A Binary is built once per test binary, on first
// use (with -race when the tests run with it, so a race in the binary fails
// them too); Start runs it with exactly the environment given (StartInput
// also feeds its standard input) and collects its output while the test reads
// it; Poll and WaitLog wait for a state while it runs, and fail at once if it
// exits first; Main, the TestMain of such packages, removes what was built and
// checks for leaked goroutines (goleak).
package proctest
