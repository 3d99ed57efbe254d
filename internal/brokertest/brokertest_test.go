package brokertest

import (
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func noDocker() bool { return false }

func noContainer(t *testing.T) func() (string, error) {
	return func() (string, error) {
		t.Error("testcontainers started although a broker was found")
		return "", errors.New("not wanted")
	}
}

// closedURL is a loopback AMQP URL where nothing listens (FreePort).
func closedURL(t *testing.T) string {
	return "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(FreePort(t)) + "/"
}

func TestDiscover_AMQPURLWinsWithoutDialling(t *testing.T) {
	u, from, err := discover("amqp://u:pw@broker.invalid:5672/", closedURL(t), noDocker, noContainer(t))
	if err != nil || u != "amqp://u:pw@broker.invalid:5672/" || from != "AMQP_URL" {
		t.Fatalf("discover = %q, %q, %v; want AMQP_URL's value", u, from, err)
	}
}

// The README's test command sets no AMQP_URL: a broker running on the machine
// must be found without it (it used to fail asking for AMQP_URL).
func TestDiscover_RunningBrokerWithoutAMQPURL(t *testing.T) {
	running := URL(t) // a broker that answers, wherever it came from
	u, from, err := discover("", running, noDocker, noContainer(t))
	if err != nil {
		t.Fatalf("discover with AMQP_URL unset and a broker at %s: %v", Redact(running), err)
	}
	if u != running || !strings.Contains(from, "AMQP_URL unset") {
		t.Fatalf("discover = %q, %q; want %q found by probing", u, from, Redact(running))
	}
}

func TestDiscover_TestcontainersWhenNothingAnswers(t *testing.T) {
	started := false
	u, from, err := discover("", closedURL(t), func() bool { return true }, func() (string, error) {
		started = true
		return "amqp://guest:guest@localhost:32768/", nil
	})
	if err != nil || !started || u != "amqp://guest:guest@localhost:32768/" || !strings.Contains(from, Image) {
		t.Fatalf("discover = %q, %q, %v (started %v); want the container's URL", u, from, err, started)
	}
}

func TestDiscover_NoBrokerSaysHowToProvideOne(t *testing.T) {
	for _, tc := range []struct {
		name      string
		docker    bool
		container func() (string, error)
		want      string
	}{
		{"no Docker", false, nil, "no Docker socket was found"},
		{"Docker fails", true, func() (string, error) { return "", errors.New("rootless Docker not found") }, "testcontainers failed: rootless Docker not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := strings.Replace(closedURL(t), "guest:guest", "guest:s3cretpw", 1)
			_, _, err := discover("", local, func() bool { return tc.docker }, tc.container)
			if !errors.Is(err, ErrNoBroker) {
				t.Fatalf("err = %v; want ErrNoBroker", err)
			}
			msg := err.Error()
			for _, want := range []string{"AMQP_URL is unset", "set AMQP_URL=", "apt install rabbitmq-server", Image, tc.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "s3cretpw") {
				t.Errorf("message shows the password:\n%s", msg)
			}
		})
	}
}

// A peer that accepts TCP and never answers must not hold the tests up past
// the probe's deadline, nor leave goroutines behind.
func TestDiscover_SilentPeerGivesUpAtTheProbeDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // held open, never written to
		}
	}()
	before := runtime.NumGoroutine()
	start := time.Now()
	_, _, err = discover("", "amqp://guest:guest@"+l.Addr().String()+"/", noDocker, nil)
	took := time.Since(start)
	if !errors.Is(err, ErrNoBroker) {
		t.Fatalf("err = %v; want ErrNoBroker", err)
	}
	if took > probeTimeout+5*time.Second {
		t.Fatalf("probe of a silent peer took %v; want about %v", took, probeTimeout)
	}
	_ = l.Close()
	for c := range accepted {
		_ = c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before the probe, %d after", before, runtime.NumGoroutine())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedact_HidesThePassword(t *testing.T) {
	if got := Redact("amqp://guest:s3cret@127.0.0.1:5672/"); strings.Contains(got, "s3cret") || !strings.Contains(got, "guest:") {
		t.Fatalf("Redact = %q", got)
	}
}
