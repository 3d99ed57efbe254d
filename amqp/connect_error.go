package amqp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Why a connection to the broker failed, as far as the broker or the TLS
// layer says. Each wraps the error it was told, so the broker's own words
// stay in the text. A Publisher or Worker keeps retrying them with backoff
// (an operator may fix the broker meanwhile), unless
// PublisherConfig.StopOnRefusal; Dial returns them once every URL of its
// list failed.
var (
	// ErrAccessRefused: the broker refused the user name or password, or
	// the user lacks a permission an operation needs (403 ACCESS_REFUSED).
	ErrAccessRefused = errors.New("amqp: access refused")
	// ErrVhostNotFound: the URL's vhost does not exist, or the user has no
	// permissions on it (530 NOT_ALLOWED on connection.open).
	ErrVhostNotFound = errors.New("amqp: vhost not found or not allowed")
	// ErrTLS: the TLS handshake failed: the broker's certificate did not
	// verify (unknown CA, another name, expired), or the broker refused the
	// client's certificate or its absence.
	ErrTLS = errors.New("amqp: TLS handshake failed")
)

// IsRefusal reports the connect errors only an operator can fix:
// ErrAccessRefused, ErrVhostNotFound and ErrTLS.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrAccessRefused) || errors.Is(err, ErrVhostNotFound) || errors.Is(err, ErrTLS)
}

// classifyConnect names why step of a dial failed with err, when it can
// tell; otherwise it returns nil.
func classifyConnect(step string, err error, asked certAsk) error {
	var aerr *amqp091.Error
	switch {
	case step == "TLS handshake" && droppedOrAlert(err) && !isRemoteTLSAlert(err):
		// A broker restarting mid-handshake: retrying can fix it.
		return nil
	case step == "TLS handshake":
		return named(ErrTLS, err, "%v: %s", ErrTLS, tlsProblem(err))
	case step == "AMQP handshake" && asked == certAskedNoneSent && !amqpRefusal(err):
		// TLS 1.3: the broker checks the client's certificate after the
		// client's side of the handshake is done, so its refusal arrives in
		// whatever form the first read or write fails: an alert, a reset, a
		// closed connection (four forms seen in CI). Asked for one and sent
		// none, that is the refusal; a broker's own AMQP refusal (a wrong
		// password) is named below.
		return named(ErrTLS, err, "%v: the broker requires a client certificate and none is configured "+
			"(set AMQP_TLS_CERT_FILE and AMQP_TLS_KEY_FILE, or certfile and keyfile); %s: %v", ErrTLS, step, err)
	case step == "AMQP handshake" && asked == certAskedSent && droppedOrAlert(err):
		return named(ErrTLS, err, "%v: the broker refused the client certificate after the handshake "+
			"(signed by a CA it does not trust, or expired?); %s: %v", ErrTLS, step, err)
	case errors.Is(err, amqp091.ErrVhost):
		// amqp091's own error for a socket closed after connection.open
		// without a reply: the broker or a proxy went away. RabbitMQ refuses
		// a vhost with a 530 close, the case below; this one is retried.
		return nil
	case errors.As(err, &aerr) && aerr.Code == amqp091.NotAllowed && aerr.Server:
		return named(ErrVhostNotFound, err, "%v: %s: %d %s (create it, or grant the user permissions on it: rabbitmqctl set_permissions -p VHOST USER ...)",
			ErrVhostNotFound, step, aerr.Code, aerr.Reason)
	case errors.As(err, &aerr) && aerr.Code == amqp091.AccessRefused:
		return named(ErrAccessRefused, err, "%v: %s: %d %s (check the user and password in AMQP_URL)", ErrAccessRefused, step, aerr.Code, aerr.Reason)
	}
	return nil
}

// certAsk is whether the broker asked for a client certificate during the
// TLS handshake, and whether one was sent.
type certAsk int

const (
	certNotAsked certAsk = iota
	certAskedNoneSent
	certAskedSent
)

// watch returns a copy of cfg that records in a whether the broker asks
// for a client certificate. It always sends cfg's first certificate, where
// crypto/tls would send none if the broker's list of CAs excluded it: the
// broker refuses either way, and this way the refusal is about ours.
func (a *certAsk) watch(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	certs := cfg.Certificates
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if len(certs) == 0 {
			*a = certAskedNoneSent
			return &tls.Certificate{}, nil
		}
		*a = certAskedSent
		return &certs[0], nil
	}
	return cfg
}

// droppedOrAlert reports a connection the peer ended: a TLS alert, a reset,
// or an end of file.
func droppedOrAlert(err error) bool {
	// amqp091.ErrClosed: the connection closed while amqp091 waited for the
	// handshake's next frame, a third way (measured in CI) the TLS 1.3
	// refusal of a client certificate arrives.
	return isRemoteTLSAlert(err) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, amqp091.ErrClosed) ||
		errors.Is(err, net.ErrClosed)
}

// amqpRefusal reports the broker's own refusal of the login or the vhost.
func amqpRefusal(err error) bool {
	var aerr *amqp091.Error
	return errors.As(err, &aerr) && (aerr.Code == amqp091.AccessRefused || aerr.Code == amqp091.NotAllowed)
}

// tlsProblem words a failed client handshake.
func tlsProblem(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return fmt.Sprintf("the broker's certificate is not signed by a trusted CA (%v); "+
			"set AMQP_TLS_CA_FILE (or cacertfile) to the CA that signed it", err)
	case errors.As(err, &host):
		return fmt.Sprintf("the broker's certificate is not valid for the name asked for (%v); "+
			"connect by a name it carries, or set AMQP_TLS_SERVER_NAME (or server_name_indication) to one", err)
	case errors.As(err, &invalid):
		return fmt.Sprintf("the broker's certificate is invalid (%v)", err)
	case isRemoteTLSAlert(err):
		return fmt.Sprintf("the broker refused the handshake (%v)", err)
	}
	return err.Error()
}

// isRemoteTLSAlert reports an alert the peer sent, such as "remote error:
// tls: certificate required" (crypto/tls has no exported type for it).
func isRemoteTLSAlert(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return true
	}
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(fmt.Sprint(err), "remote error: tls:")
}

// connectError is a classified connect error: errors.Is holds for its kind
// and for everything its cause wraps.
type connectError struct {
	kind, cause error
	text        string
}

func (e *connectError) Error() string   { return e.text }
func (e *connectError) Unwrap() []error { return []error{e.kind, e.cause} }

func named(kind, cause error, format string, args ...any) error {
	return &connectError{kind: kind, cause: cause, text: fmt.Sprintf(format, args...)}
}
