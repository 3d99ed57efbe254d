package amqp

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TLSFiles are the TLS settings of an amqps:// connection given apart from
// the URL (internal/config fills them from AMQP_TLS_* variables). Each set
// field wins over the URL parameter it stands for; an empty field leaves
// that parameter in effect:
//
//	CAFile             over cacertfile              (neither: the system's CAs)
//	CertFile, KeyFile  over certfile and keyfile    (neither: no client certificate)
//	ServerName         over server_name_indication  (neither: the URL's host)
//
// So the server name defaults to each URL's own host. The files are read at
// every connect, so a renewed certificate is used from the next reconnect;
// Validate reads them once to fail at start instead. The zero value sets
// nothing.
type TLSFiles struct {
	// CAFile is a PEM file of the CA certificates the broker's certificate
	// must chain to; they replace the system's, not add to them.
	CAFile string
	// CertFile and KeyFile are the client certificate (PEM, the chain after
	// the leaf) and its private key, for a broker that asks for one
	// (ssl_options.verify = verify_peer). Set both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name the broker's certificate must carry, and the
	// one sent as SNI.
	ServerName string
}

// IsZero reports whether f sets nothing.
func (f TLSFiles) IsZero() bool { return f == TLSFiles{} }

// TLSFileError is a TLSFiles field that cannot be used. errors.Is(err,
// ErrInvalidConfig) holds.
type TLSFileError struct {
	Field   string // "CAFile", "CertFile", "KeyFile" or "ServerName"
	Value   string // the field's value (a path or a name)
	Problem string // what is wrong, in words
}

func (e *TLSFileError) Error() string {
	return fmt.Sprintf("%v: TLS %s %q: %s", ErrInvalidConfig, e.Field, e.Value, e.Problem)
}

func (e *TLSFileError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate reads f's files and checks that they hold what they should, as
// a connect would. It does not need the URL; ValidateTLS also checks that
// the URL is amqps://.
func (f TLSFiles) Validate() error {
	if f.CAFile != "" {
		if _, err := loadCAFile(f.CAFile); err != nil {
			return &TLSFileError{Field: "CAFile", Value: f.CAFile, Problem: err.Error()}
		}
	}
	switch {
	case f.CertFile != "" && f.KeyFile == "":
		return &TLSFileError{Field: "KeyFile", Problem: "a client certificate is set without its key file: set both or neither"}
	case f.KeyFile != "" && f.CertFile == "":
		return &TLSFileError{Field: "CertFile", Problem: "a client key is set without its certificate file: set both or neither"}
	case f.CertFile != "":
		if _, err := os.ReadFile(f.CertFile); err != nil {
			return &TLSFileError{Field: "CertFile", Value: f.CertFile, Problem: fileProblem(err)}
		}
		if _, err := os.ReadFile(f.KeyFile); err != nil {
			return &TLSFileError{Field: "KeyFile", Value: f.KeyFile, Problem: fileProblem(err)}
		}
		if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
			return &TLSFileError{Field: "CertFile", Value: f.CertFile,
				Problem: fmt.Sprintf("with key file %s: not a PEM certificate and its private key: %v", f.KeyFile, err)}
		}
	}
	return nil
}

// ValidateTLS checks f for a connection to u: that its files load, and that
// u is amqps:// when f sets anything (a plain amqp:// connection would
// ignore them); in a list of URLs, every one. u must have passed
// ValidateURL.
func ValidateTLS(u string, f TLSFiles) error {
	if f.IsZero() {
		return nil
	}
	return eachURL(u, func(e string) error {
		uri, err := parseURL(e)
		if err != nil {
			return err
		}
		return f.validateFor(uri)
	})
}

// validateFor is ValidateTLS for a parsed URL.
func (f TLSFiles) validateFor(uri amqp091.URI) error {
	if f.IsZero() {
		return nil
	}
	if uri.Scheme != "amqps" {
		field, value := "CAFile", f.CAFile
		switch {
		case f.CAFile != "":
		case f.CertFile != "":
			field, value = "CertFile", f.CertFile
		case f.KeyFile != "":
			field, value = "KeyFile", f.KeyFile
		default:
			field, value = "ServerName", f.ServerName
		}
		return &TLSFileError{Field: field, Value: value,
			Problem: "TLS settings need an amqps:// broker URL (this one is amqp://, which connects without TLS)"}
	}
	return f.Validate()
}

// apply returns uri with f's set fields in place of the URL's parameters.
func (f TLSFiles) apply(uri amqp091.URI) amqp091.URI {
	if f.CAFile != "" {
		uri.CACertFile = f.CAFile
	}
	if f.CertFile != "" || f.KeyFile != "" {
		uri.CertFile, uri.KeyFile = f.CertFile, f.KeyFile
	}
	if f.ServerName != "" {
		uri.ServerName = f.ServerName
	}
	return uri
}

// loadCAFile reads a PEM bundle of CA certificates.
func loadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s", fileProblem(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("holds no PEM certificate")
	}
	return pool, nil
}

// fileProblem says why a file could not be read, without repeating its path.
func fileProblem(err error) string {
	switch {
	case os.IsNotExist(err):
		return "no such file"
	case os.IsPermission(err):
		return "not readable by this process (permission denied)"
	}
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
