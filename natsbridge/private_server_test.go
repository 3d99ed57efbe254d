package natsbridge_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventfleet/eventfleet/internal/proctest"
	"github.com/eventfleet/eventfleet/natsbridge"
)

// privateServer runs a nats-server of its own (never the shared one) with
// args, and returns its host:port; it is killed when t ends.
func privateServer(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs nats-server; skipped with -short")
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	p := proctest.Start(t, bin, nil, append([]string{"-a", "127.0.0.1", "-p", port}, args...)...)
	p.Poll(t, 10*time.Second, "nats-server listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	return addr
}

// TestJetStream_NotEnabled: a server without JetStream fails Start with
// ErrJetStream saying so.
func TestJetStream_NotEnabled(t *testing.T) {
	addr := privateServer(t) // no -js
	b, err := natsbridge.New(natsbridge.Config{Mode: natsbridge.ModeJetStream, URL: "nats://" + addr, Logger: quiet}, &fakePublisher{})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if !errors.Is(err, natsbridge.ErrJetStream) || !strings.Contains(err.Error(), "not enabled") {
		t.Fatalf("Start: %v, want ErrJetStream saying JetStream is not enabled", err)
	}
	t.Log(err)
}

// TestCore_CredentialsInURL: a server requiring a user and password takes
// them from NATS_URL; a wrong password fails Start with ErrConnect, the
// password hidden.
func TestCore_CredentialsInURL(t *testing.T) {
	addr := privateServer(t, "--user", "relay", "--pass", "s3cret")
	b, err := natsbridge.New(natsbridge.Config{Mode: natsbridge.ModeCore, URL: "nats://relay:wr0ng@" + addr, Logger: quiet}, &fakePublisher{})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if !errors.Is(err, natsbridge.ErrConnect) || strings.Contains(err.Error(), "wr0ng") || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("wrong password: %v, want ErrConnect saying authorization, password hidden", err)
	}
	t.Log(err)

	pub := &fakePublisher{}
	url := "nats://relay:s3cret@" + addr
	b = startBridge(t, natsbridge.Config{Mode: natsbridge.ModeCore, URL: url}, pub)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("events.CardAddedToLibraryEvent", []byte(cardAdded)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "published", func() bool { return b.Stats().Published == 1 })
	if ev := pub.events()[0]; ev.Type != "CardAddedToLibraryEvent" || ev.AggregateID != "lib-9" {
		t.Fatalf("event %+v", ev)
	}
}
