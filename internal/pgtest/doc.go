// Package pgtest finds the PostgreSQL server tests use and gives each test a
// database of its own.
//
// The server is TEST_DATABASE_URL (a postgres:// URL or a key=value DSN,
// as pgx takes either) when set, else the local one at LocalURL
// when it answers, else one testcontainers starts when a Docker engine may
// be reachable; otherwise tests fail saying how to provide one (never
// DATABASE_URL, so that tests cannot touch a real database). -short skips
// the tests that need it.
package pgtest
