package amqp_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TLS against a private node with a TLS listener and certificates made by
// the test: the broker's certificate verified with the given CA, a wrong CA
// and a wrong name refused and named, and the precedence of TLSFiles over
// the URL's parameters.
func TestDial_TLSServerVerification(t *testing.T) {
	t.Parallel()
	c := brokertest.NewCerts(t)
	node := brokertest.StartNode(t, brokertest.WithTLS(brokertest.NodeTLS{
		CAFile: c.CAFile, CertFile: c.ServerCertFile, KeyFile: c.ServerKey}))
	ip, host := node.TLSURL("127.0.0.1"), node.TLSURL("localhost")
	q := func(u string, kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return u + "?" + v.Encode()
	}
	cases := []struct {
		name    string
		url     string
		files   amqp.TLSFiles
		wantErr string // empty: connects
	}{
		{"CAFile", ip, amqp.TLSFiles{CAFile: c.CAFile}, ""},
		{"cacertfile in the URL", q(ip, "cacertfile", c.CAFile), amqp.TLSFiles{}, ""},
		{"CAFile wins over cacertfile", q(ip, "cacertfile", c.OtherCAFile), amqp.TLSFiles{CAFile: c.CAFile}, ""},
		{"server name defaults to the URL's host", host, amqp.TLSFiles{CAFile: c.CAFile}, ""},
		{"ServerName wins over server_name_indication", q(ip, "server_name_indication", "wrong.example"),
			amqp.TLSFiles{CAFile: c.CAFile, ServerName: "localhost"}, ""},
		{"system CAs only", ip, amqp.TLSFiles{}, "not signed by a trusted CA"},
		{"wrong CA", ip, amqp.TLSFiles{CAFile: c.OtherCAFile}, "not signed by a trusted CA"},
		{"wrong server name", ip, amqp.TLSFiles{CAFile: c.CAFile, ServerName: "broker.example"}, "not valid for the name"},
		{"wrong server_name_indication", q(host, "server_name_indication", "broker.example"),
			amqp.TLSFiles{CAFile: c.CAFile}, "not valid for the name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := dialTLS(t, tc.url, tc.files)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				_ = conn.Close()
				return
			}
			if err == nil {
				_ = conn.Close()
				t.Fatal("dial succeeded; want it refused")
			}
			if !errors.Is(err, amqp.ErrTLS) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("dial = %v; want ErrTLS saying %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), ":guest@") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// Mutual TLS: a node that requires a client certificate takes ours, from
// TLSFiles or the URL, and refuses a client without one, saying so.
func TestDial_MutualTLS(t *testing.T) {
	t.Parallel()
	c := brokertest.NewCerts(t)
	node := brokertest.StartNode(t, brokertest.WithTLS(brokertest.NodeTLS{
		CAFile: c.CAFile, CertFile: c.ServerCertFile, KeyFile: c.ServerKey, RequireClientCert: true}))
	u := node.TLSURL("localhost")
	withCert := amqp.TLSFiles{CAFile: c.CAFile, CertFile: c.ClientCertFile, KeyFile: c.ClientKey}

	t.Run("client certificate", func(t *testing.T) {
		conn, err := dialTLS(t, u, withCert)
		if err != nil {
			t.Fatalf("dial with a client certificate: %v", err)
		}
		_ = conn.Close()
	})
	t.Run("certfile and keyfile in the URL", func(t *testing.T) {
		v := url.Values{"cacertfile": {c.CAFile}, "certfile": {c.ClientCertFile}, "keyfile": {c.ClientKey}}
		conn, err := dialTLS(t, u+"?"+v.Encode(), amqp.TLSFiles{})
		if err != nil {
			t.Fatalf("dial with certfile/keyfile: %v", err)
		}
		_ = conn.Close()
	})
	t.Run("no client certificate", func(t *testing.T) {
		conn, err := dialTLS(t, u, amqp.TLSFiles{CAFile: c.CAFile})
		if err == nil {
			_ = conn.Close()
			t.Fatal("dial without a client certificate succeeded; want it refused")
		}
		if !errors.Is(err, amqp.ErrTLS) || !strings.Contains(err.Error(), "requires a client certificate") {
			t.Fatalf("dial without a client certificate = %v; want ErrTLS about the certificate", err)
		}
		t.Logf("refused as: %v", err)
	})
	t.Run("client certificate from another CA", func(t *testing.T) {
		conn, err := dialTLS(t, u, amqp.TLSFiles{CAFile: c.CAFile, CertFile: c.OtherClientCertFile, KeyFile: c.OtherClientKey})
		if err == nil {
			_ = conn.Close()
			t.Fatal("dial with an untrusted client certificate succeeded; want it refused")
		}
		if !errors.Is(err, amqp.ErrTLS) || !strings.Contains(err.Error(), "client certificate") {
			t.Fatalf("dial with an untrusted client certificate = %v; want ErrTLS about it", err)
		}
		t.Logf("refused as: %v", err)
	})
	t.Run("Publisher", func(t *testing.T) {
		p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: u, TLS: withCert, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Stop(context.Background()) }()
		if err := p.Publish(ctx, ev("OverMutualTLS", "", 1)); err != nil {
			t.Fatalf("publish over mutual TLS: %v", err)
		}
	})
}

func dialTLS(t *testing.T, u string, f amqp.TLSFiles) (interface{ Close() error }, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, u, "tls-test", amqp.WithTLS(f))
	if err != nil {
		return nil, err
	}
	return conn, nil
}
