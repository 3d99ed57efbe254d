package amqp

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// tlsFromURI builds the TLS settings of an amqps:// URL (with TLSFiles
// already applied) as
// amqp091.DialConfig does: the CA from cacertfile (else the system pool),
// a client certificate from certfile and keyfile when both are set, the
// server name from server_name_indication (else the host), TLS 1.2 or later,
// and the broker's certificate always verified.
func tlsFromURI(uri amqp091.URI) (*tls.Config, error) {
	var pool *x509.CertPool
	if uri.CACertFile != "" {
		p, err := loadCAFile(uri.CACertFile)
		if err != nil {
			return nil, &URLError{Problem: fmt.Sprintf("cacertfile %s: %v", uri.CACertFile, err)}
		}
		pool = p
	} else {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("load the system's CA certificates (or set cacertfile in the AMQP URL): %w", err)
		}
		pool = sys
	}
	cfg := &tls.Config{
		RootCAs:    pool,
		ServerName: uri.ServerName,
		MinVersion: tls.VersionTLS12,
	}
	if cfg.ServerName == "" {
		cfg.ServerName = uri.Host
	}
	if (uri.CertFile == "") != (uri.KeyFile == "") {
		// amqp091 would silently connect without a client certificate.
		return nil, &URLError{Problem: "certfile and keyfile go together; set both or neither"}
	}
	if uri.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(uri.CertFile, uri.KeyFile)
		if err != nil {
			return nil, &URLError{Problem: fmt.Sprintf("certfile/keyfile: %v", err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
