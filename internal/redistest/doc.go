// Package redistest finds the Redis server tests use: TEST_REDIS_URL when
// set, else the local one at LocalURL. Tests that cannot reach it fail
// saying how to provide one; -short skips them.
package redistest
