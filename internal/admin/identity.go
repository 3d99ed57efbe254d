package admin

import (
	"crypto/rand"
	"encoding/hex"
)

// Roles of the binaries, as /healthz and /readyz name them.
const (
	RoleWorker    = "worker"
	RolePublisher = "publisher"
	RoleRelay     = "relay"
)

// Identity names one process: two workers of one app share Role and App,
// never Instance.
type Identity struct {
	Role     string
	App      string
	Instance string
}

// NewIdentity makes the identity of this process, with a fresh random
// instance id.
func NewIdentity(role, app string) Identity {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return Identity{Role: role, App: app, Instance: hex.EncodeToString(b)}
}

func (id Identity) status(status, reason string) Status {
	return Status{Status: status, Reason: reason, Role: id.Role, App: id.App, Instance: id.Instance}
}
