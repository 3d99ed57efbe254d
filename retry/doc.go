// Package retry holds eventfleet's two timing policies and the error marker that
// decides between them.
//
//   - Policy is the delayed-retry schedule for failed events: how long an event
//     waits before its next attempt, and after how many attempts it is dead.
//   - Backoff is the reconnect schedule for broker connections: exponential with
//     full jitter, so a fleet of workers does not reconnect in lockstep after a
//     broker restart.
//   - Permanent marks a handler error that retrying cannot fix; such an event
//     goes to the dead-letter queue at once.
package retry
