//go:build race

package main

// raceEnabled makes TestMain build the binary with -race too, so that the
// processes the tests start are checked like the tests themselves.
const raceEnabled = true
