package brokertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A NodeOption changes the private node StartNode starts.
type NodeOption func(*nodeSetup)

// nodeSetup is what the options decide before the node starts.
type nodeSetup struct {
	conf  []string          // extra rabbitmq.conf lines
	files map[string]string // name in the node's dir -> file to copy there
	tls   bool              // open a TLS listener on Node.TLSPort
	env   []string          // extra environment for the server, KEY=value
	// advanced are {Key, Value} terms of the rabbit application for
	// advanced.config: settings rabbitmq.conf has no name for.
	advanced []string
}

// withEnv adds environment variables (KEY=value) to the server's
// environment; later ones win over StartNode's own.
func withEnv(kv ...string) NodeOption {
	return func(s *nodeSetup) { s.env = append(s.env, kv...) }
}

// WithConf adds lines to the node's rabbitmq.conf, e.g.
// "handshake_timeout = 2000".
func WithConf(lines ...string) NodeOption {
	return func(s *nodeSetup) { s.conf = append(s.conf, lines...) }
}

// WithAdvanced adds {Key, Value} terms of the rabbit application to the
// node's advanced.config, for settings rabbitmq.conf cannot set, e.g.
// "{dead_letter_worker_publisher_confirm_timeout, 30000}".
func WithAdvanced(terms ...string) NodeOption {
	return func(s *nodeSetup) { s.advanced = append(s.advanced, terms...) }
}

// NodeTLS is a TLS listener's certificates, PEM files anywhere the test
// likes (t.TempDir()): StartNode copies them into the node's own directory,
// which the rabbitmq user the server runs as can read.
type NodeTLS struct {
	CAFile, CertFile, KeyFile string
	// RequireClientCert makes the node ask for a client certificate signed
	// by CAFile and refuse a client without one (verify_peer,
	// fail_if_no_peer_cert).
	RequireClientCert bool
}

// WithTLS opens a TLS listener on Node.TLSPort with t's certificates,
// beside the plain one on Node.Port.
func WithTLS(t NodeTLS) NodeOption {
	return func(s *nodeSetup) {
		s.tls = true
		s.files["tls-ca.pem"] = t.CAFile
		s.files["tls-cert.pem"] = t.CertFile
		s.files["tls-key.pem"] = t.KeyFile
		verify := []string{"ssl_options.verify = verify_none", "ssl_options.fail_if_no_peer_cert = false"}
		if t.RequireClientCert {
			verify = []string{"ssl_options.verify = verify_peer", "ssl_options.fail_if_no_peer_cert = true"}
		}
		s.conf = append(s.conf, verify...)
	}
}

// write puts the options' files and conf lines into dir, the node's
// directory; tlsPort is the TLS listener's port (used with WithTLS). It
// returns the extra rabbitmq.conf lines and the advanced.config.
func (s *nodeSetup) write(dir string, tlsPort int) (conf, advanced string, err error) {
	for name, src := range s.files {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", "", err
		}
	}
	lines := s.conf
	if s.tls {
		lines = append(lines,
			fmt.Sprintf("listeners.ssl.default = %d", tlsPort),
			"ssl_options.cacertfile = "+filepath.Join(dir, "tls-ca.pem"),
			"ssl_options.certfile = "+filepath.Join(dir, "tls-cert.pem"),
			"ssl_options.keyfile = "+filepath.Join(dir, "tls-key.pem"),
		)
	}
	for _, l := range lines {
		conf += l + "\n"
	}
	return conf, "[{rabbit, [" + strings.Join(s.advanced, ", ") + "]}].\n", nil
}
