//go:build !race

package chaos

// procRace is true when the tests run with -race (see race_test.go).
const procRace = false
