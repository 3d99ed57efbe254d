// Package chaos proves eventfleet's promise under real faults: nothing confirmed
// is ever lost, and nothing poison wedges a queue.
//
// The tests run publishers and workers against a private RabbitMQ node
// (internal/brokertest.StartNode) or through an in-process toxiproxy, break
// things — kill -9 the broker, reset connections, SIGKILL workers, raise memory
// alarms — and then ask the Checker: every confirmed event id must have been
// handled or dead-lettered (lost = 0), nothing may be handled that was never
// published (phantoms = 0); duplicates are allowed and counted.
//
// The short versions run in the README's test command. The long versions
// (more events, more rounds) run with
//
//	go test -v -count=1 -timeout 30m ./chaos/ -chaos.long
//
// docs/reliability.md has the figures.
package chaos
