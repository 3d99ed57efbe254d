// Package lifecycle is the one start/stop and reconnect primitive of
// eventfleet's connection owners (amqp.Publisher and amqp.Worker).
//
// A Lifecycle moves through explicit states:
//
//	Idle ──Start──▶ Running ──Stop──▶ Stopping ──Halt──▶ Halting ──Finish──▶ Stopped
//	  └─────────────────────Stop (never started)──────────────────────────────▲
//
// Finish from Running (a fatal error) goes straight to Stopped, recording the
// error before Stopping and Halted close, so whoever they wake can ask Err.
//
// Stopping is the soft phase: no new work is taken, work in flight may
// finish. Halting is the hard phase: Halted and HaltContext end, so whatever
// still runs gives up. Finish records why the owner ended (nil after Stop, or
// the fatal error that ended it) and closes Done. Every transition happens
// once; calling Stop twice, or before Start, is fine.
//
// Loop is the reconnect loop both owners run: connect, serve the session
// until it ends, back off, connect again, until the owner quits or an error
// that reconnecting cannot fix.
package lifecycle
