package main

import (
	"fmt"
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestPublish_AsAWriteOnlyUser runs `publisher publish` with TOPOLOGY=passive
// as a broker user that may only write to the shared exchange and its
// unrouted exchange (configure ^$, read ^$), on a private node after the
// topology owner's one `publisher publish` with TOPOLOGY=declare: a routed
// and an unroutable event are both confirmed.
func TestPublish_AsAWriteOnlyUser(t *testing.T) {
	t.Parallel()
	node := brokertest.StartNode(t)
	env := func(url string, extra ...string) []string {
		return append([]string{"AMQP_URL=" + url, "EXCHANGE=domain_events", "APP_NAME=publisher-test", "LOG_LEVEL=info"}, extra...)
	}
	// The topology owner (guest) declares, and publishes nothing.
	if out, errOut, code := runBin(t, env(node.URL()), strings.NewReader(""), "publish"); code != 0 {
		t.Fatalf("owner's publish exited %d: %s%s", code, out, errOut)
	}
	ch := nodeChannel(t, node)
	if _, err := ch.QueueDeclare("events_a", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("events_a", "CardAddedToLibraryEvent", "domain_events", false, nil); err != nil {
		t.Fatal(err)
	}
	node.Ctl(t, "add_user", "publisher", "pw-p")
	node.Ctl(t, "set_permissions", "-p", "/", "publisher", "^$", `^domain_events(\.unrouted)?$`, "^$")

	url := fmt.Sprintf("amqp://publisher:pw-p@127.0.0.1:%d/", node.Port)
	in := `{"type":"CardAddedToLibraryEvent","id":"routed"}` + "\n" + `{"type":"NobodyListens","id":"unrouted"}` + "\n"
	out, errOut, code := runBin(t, env(url, "TOPOLOGY=passive"), strings.NewReader(in), "publish")
	if code != 0 || out != "published=2 failed=0\n" {
		t.Fatalf("publish as the write-only user: %q exit %d\n%s", out, code, errOut)
	}
	for q, want := range map[string]int{"events_a": 1, amqp.UnroutedQueue("domain_events"): 1} {
		st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		if err != nil || st.Messages != want {
			t.Errorf("%s holds %d (%v), want %d", q, st.Messages, err, want)
		}
	}
}

func nodeChannel(t *testing.T, node *brokertest.Node) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(node.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}
