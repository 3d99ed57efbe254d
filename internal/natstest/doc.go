// Package natstest finds the NATS server tests use: TEST_NATS_URL when set,
// else the local one at LocalURL. Tests that cannot reach it fail saying
// how to provide one; -short skips them.
package natstest
