package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// AMQP_TLS_* are checked at start: a file that is missing or holds the
// wrong thing, a certificate without its key (or the reverse), and TLS
// settings on a plain amqp:// URL are errors naming the variable.
func TestLoad_TLSVariables(t *testing.T) {
	t.Parallel()
	c := brokertest.NewCerts(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	const tlsURL = "amqps://u:pw123@broker.example:5671/"
	tests := []struct {
		name    string
		env     map[string]string
		varName string // empty: accepted
		hint    string
	}{
		{"all set", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CA_FILE": c.CAFile,
			"AMQP_TLS_CERT_FILE": c.ClientCertFile, "AMQP_TLS_KEY_FILE": c.ClientKey, "AMQP_TLS_SERVER_NAME": "rabbit.internal"}, "", ""},
		{"CA only", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CA_FILE": c.CAFile}, "", ""},
		{"server name only", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_SERVER_NAME": "rabbit.internal"}, "", ""},
		{"missing CA", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CA_FILE": "/nonexistent/ca.pem"}, "AMQP_TLS_CA_FILE", "no such file"},
		{"CA not PEM", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CA_FILE": notPEM}, "AMQP_TLS_CA_FILE", "no PEM certificate"},
		{"cert without key", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CERT_FILE": c.ClientCertFile}, "AMQP_TLS_KEY_FILE", "set both or neither"},
		{"key without cert", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_KEY_FILE": c.ClientKey}, "AMQP_TLS_CERT_FILE", "set both or neither"},
		{"missing cert", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CERT_FILE": "/nonexistent/c.pem", "AMQP_TLS_KEY_FILE": c.ClientKey},
			"AMQP_TLS_CERT_FILE", "no such file"},
		{"missing key", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CERT_FILE": c.ClientCertFile, "AMQP_TLS_KEY_FILE": "/nonexistent/k.pem"},
			"AMQP_TLS_KEY_FILE", "no such file"},
		{"key of another certificate", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CERT_FILE": c.ClientCertFile, "AMQP_TLS_KEY_FILE": c.ServerKey},
			"AMQP_TLS_CERT_FILE", "private key"},
		{"cert not PEM", map[string]string{"AMQP_URL": tlsURL, "AMQP_TLS_CERT_FILE": notPEM, "AMQP_TLS_KEY_FILE": c.ClientKey},
			"AMQP_TLS_CERT_FILE", "not a PEM certificate"},
		{"plain amqp://", map[string]string{"AMQP_URL": "amqp://u:pw123@broker.example/", "AMQP_TLS_CA_FILE": c.CAFile},
			"AMQP_TLS_CA_FILE", "amqps://"},
	}
	loads := map[string]func(map[string]string) (Broker, error){
		"LoadWorker":    func(e map[string]string) (Broker, error) { c, err := LoadWorker(e); return c.Broker, err },
		"LoadPublisher": func(e map[string]string) (Broker, error) { c, err := LoadPublisher(e); return c.Broker, err },
		"LoadInspect":   func(e map[string]string) (Broker, error) { c, err := LoadInspect(e); return c.Broker, err },
	}
	for _, tt := range tests {
		for name, load := range loads {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				b, err := load(tt.env)
				if tt.varName == "" {
					if err != nil {
						t.Fatalf("%s = %v; want it accepted", name, err)
					}
					if got := b.TLS(); got.CAFile != tt.env["AMQP_TLS_CA_FILE"] || got.ServerName != tt.env["AMQP_TLS_SERVER_NAME"] {
						t.Errorf("TLS() = %+v; want the variables", got)
					}
					return
				}
				var ce *Error
				if !errors.As(err, &ce) || ce.Var != tt.varName || !strings.Contains(err.Error(), tt.hint) {
					t.Fatalf("%s = %v; want an error naming %s with %q", name, err, tt.varName, tt.hint)
				}
				if strings.Contains(err.Error(), "pw123") {
					t.Errorf("error shows the password: %v", err)
				}
			})
		}
	}
}

// The library configurations carry the TLS settings.
func TestLoad_TLSReachesTheLibrary(t *testing.T) {
	t.Parallel()
	c := brokertest.NewCerts(t)
	env := map[string]string{"AMQP_URL": "amqps://u:p@broker.example/", "AMQP_TLS_CA_FILE": c.CAFile, "AMQP_TLS_SERVER_NAME": "rabbit"}
	w, err := LoadWorker(env)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.WorkerConfig(nil, nil).TLS; got.CAFile != c.CAFile || got.ServerName != "rabbit" {
		t.Errorf("WorkerConfig().TLS = %+v", got)
	}
	p, err := LoadPublisher(env)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.PublisherConfig(nil, nil).TLS; got.CAFile != c.CAFile || got.ServerName != "rabbit" {
		t.Errorf("PublisherConfig().TLS = %+v", got)
	}
}
