//go:build race

package chaos

// procRace is true when the tests run with -race; the worker binary they
// start is then built with -race too, so a race in cmd/worker or amqp fails
// the chaos tests.
const procRace = true
