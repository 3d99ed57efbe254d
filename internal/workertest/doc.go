// Package workertest runs amqp.Workers inside a test's own process, for the
// tests of the packages around amqp (chaos, deadletter, amqp's own external
// tests): Start starts one and stops it at the test's cleanup, WaitReady waits
// until it consumes, so that events published from then on reach its queue.
//
// It imports amqp, so only external test packages (package amqp_test) of amqp
// may use it; amqp's internal tests would make an import cycle.
package workertest
