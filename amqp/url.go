package amqp

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is the broker address used when none is configured.
const DefaultURL = "amqp://guest:guest@localhost:5672/"

// RedactURL returns u with its password replaced by "xxxxx", for logs and
// errors; in a list of URLs (separated by commas), each one's. A URL whose
// password cannot be told apart is hidden entirely rather than echoed: an
// unparsable one, one without "//" ("user:pw@host" parses with "user" as the
// scheme), and one with an "@" outside the user info
// ("amqp://user:pw/x@host/" parses with "pw" as the port).
func RedactURL(u string) string {
	list := splitList(u)
	if len(list) == 1 {
		return redactOne(u)
	}
	for i, e := range list {
		if e != "" {
			list[i] = redactOne(e)
		}
	}
	return strings.Join(list, ",")
}

func redactOne(u string) string {
	p, err := url.Parse(u)
	// An "@" after the host (in the path, query or fragment) is most
	// likely a mistyped list ("…@h1/,user:pw@h2"): hidden whole too.
	if err != nil || p.Opaque != "" || (p.User == nil && strings.Contains(u, "@")) ||
		strings.Contains(p.EscapedPath()+p.RawQuery+p.Fragment, "@") {
		return "<unparsable AMQP URL>"
	}
	return p.Redacted()
}

// ValidateURL checks that u is an AMQP URL the client accepts, or a list of
// them separated by commas, including, for amqps://, that the certificate
// files load. The error never contains the password; in a list it is a
// *URLError naming the element (Element).
func ValidateURL(u string) error { return validateURL(u, TLSFiles{}) }

// ValidateURLWith is ValidateURL for a URL dialled with f, whose set files
// replace the URL's own TLS parameters: those are not checked. Check f
// itself with ValidateTLS first.
func ValidateURLWith(u string, f TLSFiles) error { return validateURL(u, f) }

func validateURL(u string, f TLSFiles) error {
	return eachURL(u, func(e string) error {
		_, err := parseTarget(e, dialOptions{tls: f})
		return err
	})
}

// eachURL calls check on every URL of the list u, and returns the first
// error, with the element's position set when u lists several.
func eachURL(u string, check func(string) error) error {
	urls, err := splitURLs(u)
	if err != nil {
		return err
	}
	for i, e := range urls {
		err := check(e)
		if err == nil {
			continue
		}
		if len(urls) > 1 {
			var ue *URLError
			var te *TLSFileError
			switch {
			case errors.As(err, &ue):
				ue.Element = i + 1
			case errors.As(err, &te):
				te.Problem += fmt.Sprintf(" (URL %d of the list, %s)", i+1, redactOne(e))
			}
		}
		return err
	}
	return nil
}

// URLError is an AMQP URL the client cannot use. Its text never contains
// the password. errors.Is(err, ErrInvalidConfig) holds.
type URLError struct {
	URL     string // the URL, redacted; "" for an empty element of a list
	Problem string // what is wrong, in words
	// Element is the URL's position (from 1) in a list of several URLs;
	// 0 when only one was given.
	Element int
}

func (e *URLError) Error() string {
	if e.Element > 0 {
		return fmt.Sprintf("%v: AMQP URL %d of the list %s: %s", ErrInvalidConfig, e.Element, e.URL, e.Problem)
	}
	return fmt.Sprintf("%v: AMQP URL %s: %s", ErrInvalidConfig, e.URL, e.Problem)
}

func (e *URLError) Is(target error) bool { return target == ErrInvalidConfig }

// parseURL is amqp091.ParseURI with errors that say what is wrong in words:
// the parser's own errors quote the URL, password included.
func parseURL(u string) (amqp091.URI, error) {
	bad := func(problem string) (amqp091.URI, error) {
		return amqp091.URI{}, &URLError{URL: redactOne(u), Problem: problem}
	}
	if strings.ContainsRune(u, ' ') {
		return bad(`contains a space; percent-encode it (%20) in the user or password`)
	}
	p, err := url.Parse(u)
	if err != nil {
		return bad(urlProblem(err))
	}
	if p.Scheme != "amqp" && p.Scheme != "amqps" {
		return bad("unknown scheme; the URL must start with amqp:// or amqps://")
	}
	if p.User == nil && strings.Contains(u, "@") {
		// "amqp://user:1234/x@host/" parses as host "user", port 1234.
		return bad(`an "@" after the host; percent-encode "/", "?" and "#" in the password, and "@" in a vhost as %40`)
	}
	if strings.Contains(p.EscapedPath()+p.RawQuery+p.Fragment, "@") {
		// Most likely a list whose next URL lost its scheme:
		// "amqp://u:pw@h1/,u:pw@h2/" is one URL, vhost ",u:pw@h2/".
		return bad(`an "@" after the host; in a list every URL starts with amqp:// or amqps://, and an "@" in a vhost is written %40`)
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("port out of range 1-65535")
		}
	}
	uri, err := amqp091.ParseURI(u)
	if err != nil {
		// What is left are query parameters; their errors quote only the value.
		return bad(err.Error())
	}
	if timeout := uri.ConnectionTimeout; timeout < 0 || time.Duration(timeout) > time.Hour/time.Millisecond {
		return bad("connection_timeout must be milliseconds between 0 and 3600000")
	}
	return uri, nil
}

// urlProblem names what net/url rejected without quoting it: its errors echo
// the URL, and even the bad escape alone is a piece of the password.
func urlProblem(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var escape url.EscapeError
	var host url.InvalidHostError
	msg := err.Error()
	switch {
	case errors.As(err, &escape):
		return `a "%" not followed by two hex digits; write a literal "%" in the user or password as %25`
	case errors.As(err, &host):
		return "an invalid character in the host"
	case strings.Contains(msg, "invalid port"):
		return `the text after the host's ":" is not a port number; if the password contains "/", "?" or "#", percent-encode it`
	case strings.Contains(msg, "control character"):
		return "a control character (newline, tab, ...)"
	case strings.Contains(msg, "userinfo"):
		return "an invalid character in the user or password; percent-encode it"
	case strings.Contains(msg, "missing protocol scheme"):
		return "no scheme; the URL must start with amqp:// or amqps://"
	}
	return `not a URL; percent-encode reserved characters ("?", "#", "@", ":", "/", "%") in the user or password`
}

// urlQuery is u's query; u has passed parseURL.
func urlQuery(u string) (url.Values, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, &URLError{URL: redactOne(u), Problem: urlProblem(err)}
	}
	return p.Query(), nil
}

// saslFromURI picks the SASL mechanisms as amqp091.DialConfig does: the
// URL's auth_mechanism values, else PLAIN with the URL's credentials.
func saslFromURI(uri amqp091.URI) ([]amqp091.Authentication, error) {
	if len(uri.AuthMechanism) == 0 {
		return []amqp091.Authentication{uri.PlainAuth()}, nil
	}
	var sasl []amqp091.Authentication
	for _, m := range uri.AuthMechanism {
		switch strings.ToUpper(m) {
		case "PLAIN":
			sasl = append(sasl, uri.PlainAuth())
		case "AMQPLAIN":
			sasl = append(sasl, uri.AMQPlainAuth())
		case "EXTERNAL":
			sasl = append(sasl, &amqp091.ExternalAuth{})
		default:
			return nil, &URLError{Problem: fmt.Sprintf("auth_mechanism %q: use PLAIN, AMQPLAIN or EXTERNAL", m)}
		}
	}
	return sasl, nil
}

// DefaultHeartbeat is the AMQP heartbeat interval asked for when none is
// configured. A peer that stays silent for about three intervals (a half-open
// connection, a frozen broker) is treated as gone.
const DefaultHeartbeat = 10 * time.Second
