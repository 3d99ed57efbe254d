// Package deploy has no code, only deploy_test.go, which keeps the deployment
// files at the repository root honest: Dockerfile, docker-compose.yml and
// fly.toml must agree with the settings the binaries read (internal/config)
// and with each other; exposure_test.go keeps what they expose in check
// (compose ports on 127.0.0.1 only, broker credentials from the environment,
// the public demo key and its hash, the unrouted queue's policy, Fly's
// request limits and key secrets), reading docker-compose.yml both as written
// and as compose interpolates it with nothing exported (interpolate_test.go);
// relay_test.go keeps the outbox relay's deployment in check (DATABASE_URL a
// Fly secret, compose's database credentials from the environment, the
// event_store table and trigger its first boot creates, relay migrate before
// the relays, the demo writing in transactions);
// testcmd_test.go keeps .ci/run and the Makefile running the README's test
// command. It needs no broker and no Docker engine:
//
//	go test ./deploy/
//
// Terms: an "app" is one consumer of events with its own queue
// (events_<APP_NAME>); a "process group" is Fly's name for the Machines that
// run one command of the image ([processes] in fly.toml); a compose "app
// service" is one built from the Dockerfile, as opposed to rabbitmq; a
// "role" is what a command does (publisher serve, worker, relay, and the
// one-shot relay migrate).
package deploy
