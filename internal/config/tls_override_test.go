package config

import (
	"testing"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// Each AMQP_TLS_* variable "wins over the URL parameter it stands for"
// (README, TLSFiles). At start, though, ValidateURL checks the URL's own
// cacertfile, certfile and keyfile before the variables are applied, so a
// parameter the variable overrides still stops the binary (exit 2, naming
// AMQP_URL) when its file is gone, e.g. after moving from URL parameters
// to the variables without editing the URL. The connect itself would use
// the variable's file. Fix: validate the URL with the TLS files applied
// (parseTarget(u, dialOptions{tls: f})) rather than the URL alone.
func TestOverriddenURLParameterNotChecked(t *testing.T) {
	t.Parallel()
	c := brokertest.NewCerts(t)
	for _, tt := range []struct{ name, url string }{
		{"cacertfile", "amqps://u:pw123@broker.example:5671/?cacertfile=/nonexistent/old-ca.pem"},
		{"certfile without keyfile", "amqps://u:pw123@broker.example:5671/?certfile=/nonexistent/old.pem"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"AMQP_URL": tt.url, "AMQP_TLS_CA_FILE": c.CAFile,
				"AMQP_TLS_CERT_FILE": c.ClientCertFile, "AMQP_TLS_KEY_FILE": c.ClientKey}
			if _, err := LoadPublisher(env); err != nil {
				t.Errorf("LoadPublisher = %v; want it accepted: the variables replace the URL's parameters", err)
			}
		})
	}
}
