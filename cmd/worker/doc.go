// Command worker consumes one app's queue, "events_<app>", and hands each event
// to a handler: HANDLER=log writes it as a JSON line to stdout (package
// eventlog), HANDLER=webhook POSTs it to WEBHOOK_URL (package webhook),
// HANDLER=redis PUBLISHes its data to a Redis channel for real-time
// subscribers (package redisfanout). Failed
// events are retried on RETRY_DELAYS and end in "events_<app>.dead"; package
// amqp does that part.
//
// Usage:
//
//	worker          run the worker (same as "worker run")
//	worker run      run the worker
//	worker dlq …    list, peek at, replay or purge the app's dead letters
//	                (and, with --unrouted, the unrouted events); see package
//	                deadletter and the README
//	worker -h       list the commands and the environment variables
//
// All settings come from the environment (see internal/config); "worker -h"
// lists them with their defaults.
//
// # Streams
//
// Stdout carries nothing but event lines, so "worker | jq" works; logs are JSON
// on stderr, at LOG_LEVEL. The broker's password never appears in either.
//
// # Exit codes
//
//	0  stopped by SIGINT or SIGTERM (also when SHUTDOWN_TIMEOUT cut the drain
//	   short: the unfinished events go back to the queue), or -h
//	1  the worker hit an error that reconnecting cannot fix, such as an existing
//	   queue declared with other arguments (amqp.ErrTopologyMismatch)
//	2  bad command line or configuration; the message names the variable
//
// An unreachable broker is not an error: the worker keeps retrying with backoff
// until it connects or is stopped.
package main
