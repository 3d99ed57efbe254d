package main

import (
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// TestPublish_MutualTLSByVariables: AMQP_TLS_* reach the connection. A
// private node that requires a client certificate takes the publisher's,
// and refuses it without one, at once and saying why.
func TestPublish_MutualTLSByVariables(t *testing.T) {
	t.Parallel()
	c := brokertest.NewCerts(t)
	node := brokertest.StartNode(t, brokertest.WithTLS(brokertest.NodeTLS{
		CAFile: c.CAFile, CertFile: c.ServerCertFile, KeyFile: c.ServerKey, RequireClientCert: true}))
	base := []string{"AMQP_URL=" + node.TLSURL("127.0.0.1"), "EXCHANGE=" + brokertest.Name(t),
		"AMQP_TLS_CA_FILE=" + c.CAFile, "PUBLISH_TIMEOUT=60s"}

	stdout, stderr, code := runBin(t, append(base, "AMQP_TLS_CERT_FILE="+c.ClientCertFile, "AMQP_TLS_KEY_FILE="+c.ClientKey),
		strings.NewReader(ndjson(3)), "publish")
	if stdout != "published=3 failed=0\n" || code != 0 {
		t.Errorf("with a client certificate: stdout %q exit %d, want published=3 exit 0; stderr:\n%s", stdout, code, stderr)
	}

	stdout, stderr, code = runBin(t, base, strings.NewReader(ndjson(3)), "publish")
	if stdout != "published=0 failed=3\n" || code != 1 || !strings.Contains(stderr, "amqp: TLS handshake failed: the broker requires a client certificate") {
		t.Errorf("without a client certificate: stdout %q exit %d, want published=0 exit 1 naming the certificate; stderr:\n%s", stdout, code, stderr)
	}

	// The server name defaults to the URL's host; AMQP_TLS_SERVER_NAME
	// overrides it, and a name the certificate lacks is refused.
	_, stderr, code = runBin(t, append(base, "AMQP_TLS_SERVER_NAME=broker.example"), strings.NewReader(ndjson(1)), "publish")
	if code != 1 || !strings.Contains(stderr, "not valid for the name") {
		t.Errorf("AMQP_TLS_SERVER_NAME=broker.example: exit %d, want 1 naming the name; stderr:\n%s", code, stderr)
	}
}
