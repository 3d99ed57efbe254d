package amqp_test

import (
	"testing"

	"github.com/eventfleet/eventfleet/amqp"
)

// TestValidateAppName_RefusesNamesOfAnotherAppsTopology: app "a.hops" has
// the queue "events_a.hops", the name of app a's own exchange. Permissions
// match names, not kinds, so the documented pattern for app a
// (events_a(\.hops|\.dead|\.retry\..*)?) gives app a's user read, write and
// configure on app a.hops's queue, and app a.hops's pattern gives its user
// write and configure on app a's exchange, which reaches app a's queues:
// the confinement docs/least-privilege.md promises does not hold. ("a.dead"
// and "a.retry.1s" share app a's queues themselves, before this change.)
func TestValidateAppName_RefusesNamesOfAnotherAppsTopology(t *testing.T) {
	t.Parallel()
	for _, app := range []string{"a.hops", "a.dead", "a.retry.1s"} {
		if err := amqp.ValidateAppName(app); err == nil {
			t.Errorf("ValidateAppName(%q) = nil: its queue %q is a name of app %q's topology",
				app, amqp.AppQueue(app), "a")
		}
	}
}

// TestValidateAppName_KeepsNamesThatMakeNoOtherAppsNames: dots are still
// allowed where they make no name of another app's topology.
func TestValidateAppName_KeepsNamesThatMakeNoOtherAppsNames(t *testing.T) {
	t.Parallel()
	for _, app := range []string{"a", "billing-service", "a.b", "a.hopscotch", "a.deadline", "a.retry", "a.hops.x", "retry.1s"} {
		if err := amqp.ValidateAppName(app); err != nil {
			t.Errorf("ValidateAppName(%q) = %v, want nil", app, err)
		}
	}
	for _, app := range []string{"a.hops", "a.dead", "a.retry.1s", "a.retry.x", "a.b.dead"} {
		if err := amqp.ValidateAppID(app); err != nil {
			t.Errorf("ValidateAppID(%q) = %v, want nil: an app_id makes no queue", app, err)
		}
	}
}
