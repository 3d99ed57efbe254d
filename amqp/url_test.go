package amqp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
)

// badURLs hold the password S3cret... in ways the URL parser trips over.
var badURLs = []struct {
	url, want string
}{
	{"amqp://user:S3cret%zzPW@host/", `"%" not followed by two hex digits`},
	{"amqp://user:S3cret%PW@host/", `"%" not followed by two hex digits`},
	{"amqp://user:S3cret/PW@host/", "not a port number"},
	{"amqp://user:S3cret#PW@host/", "not a port number"},
	{"amqp://user:S3cretPW@host:99999/", "port out of range"},
	{"amqp://user:1234/S3cret@host/", `an "@" after the host`},
	{"amqp://user:S3cret PW@host/", "space"},
	{"amqp://user:S3cret\nPW@host/", "control character"},
	{"amqp://user:S3cret\tPW@host/", "control character"},
	{"http://user:S3cretPW@host/", "unknown scheme"},
	{"user:S3cretPW@host", "unknown scheme"},
	{"amqps://user:S3cretPW@host/?heartbeat=abc", "heartbeat"},
	{"amqps://user:S3cretPW@host/?channel_max=-1", "channel_max"},
	{"amqps://user:S3cretPW@host/?connection_timeout=x", "connection_timeout"},
	{"amqps://user:S3cretPW@host/?cacertfile=/nonexistent/ca.pem", "cacertfile"},
	{"amqps://user:S3cretPW@host/?certfile=/nonexistent/c.pem", "certfile and keyfile go together"},
	{"amqps://user:S3cretPW@host/?certfile=/nonexistent/c.pem&keyfile=/nonexistent/k.pem", "certfile/keyfile"},
	{"amqp://user:S3cretPW@host/?auth_mechanism=KERBEROS", "auth_mechanism"},
}

func checkURLError(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error", what)
	case strings.Contains(err.Error(), "S3cret"):
		t.Errorf("%s: error shows the password: %v", what, err)
	case !errors.Is(err, amqp.ErrInvalidConfig) || !strings.Contains(err.Error(), want):
		t.Errorf("%s: err = %v; want ErrInvalidConfig saying %q", what, err, want)
	}
}

func TestValidateURL_ErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	for _, tc := range badURLs {
		checkURLError(t, "ValidateURL("+tc.url+")", amqp.ValidateURL(tc.url), tc.want)
		if r := amqp.RedactURL(tc.url); strings.Contains(r, "S3cret") {
			t.Errorf("RedactURL(%q) = %q shows the password", tc.url, r)
		}
	}
}

func TestNewPublisher_URLErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	for _, tc := range badURLs {
		p, err := amqp.NewPublisher(amqp.PublisherConfig{URL: tc.url})
		if err == nil {
			_ = p.Stop(context.Background())
		}
		checkURLError(t, "NewPublisher("+tc.url+")", err, tc.want)
	}
}

func TestNewWorker_URLErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	h := event.HandlerFunc(func(context.Context, event.Event) error { return nil })
	for _, tc := range badURLs {
		_, err := amqp.NewWorker(amqp.WorkerConfig{URL: tc.url, App: "dialtest"}, h)
		checkURLError(t, "NewWorker("+tc.url+")", err, tc.want)
	}
}

func TestDial_URLErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	for _, tc := range badURLs {
		c, err := amqp.Dial(context.Background(), tc.url, "dial-test")
		if err == nil {
			_ = c.Close()
		}
		checkURLError(t, "Dial("+tc.url+")", err, tc.want)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"amqp://user:S3cretPW@host:5672/vh": "amqp://user:xxxxx@host:5672/vh",
		"amqps://host/":                     "amqps://host/",
		"user:S3cretPW@host":                "<unparsable AMQP URL>",
		"amqp://user:1234/x@host/":          "<unparsable AMQP URL>",
		"amqp://user:S3cret%zz@host/":       "<unparsable AMQP URL>",
	} {
		if got := amqp.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
