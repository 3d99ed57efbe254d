package config

import (
	"errors"
	"strings"
	"testing"
)

// AMQP_URL errors say what is wrong and never show the password.
func TestLoadBroker_AMQPURLErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	for u, want := range map[string]string{
		"amqp://user:S3cret%zzPW@host/":                    "%25",
		"amqp://user:S3cret/PW@host/":                      "not a port number",
		"amqp://user:S3cretPW@host:99999/":                 "port out of range",
		"amqp://user:S3cret PW@host/":                      "space",
		"user:S3cretPW@host":                               "unknown scheme",
		"amqps://user:S3cretPW@host/?cacertfile=/nope.pem": "cacertfile",
	} {
		for name, load := range map[string]func(map[string]string) error{
			"LoadBroker":    func(e map[string]string) error { _, err := LoadBroker(e); return err },
			"LoadWorker":    func(e map[string]string) error { _, err := LoadWorker(e); return err },
			"LoadPublisher": func(e map[string]string) error { _, err := LoadPublisher(e); return err },
		} {
			err := load(map[string]string{"AMQP_URL": u})
			var ce *Error
			switch {
			case !errors.As(err, &ce) || ce.Var != "AMQP_URL":
				t.Errorf("%s(AMQP_URL=%q) = %v; want an error naming AMQP_URL", name, u, err)
			case strings.Contains(err.Error(), "S3cret"):
				t.Errorf("%s(AMQP_URL=%q): error shows the password: %v", name, u, err)
			case !strings.Contains(err.Error(), want):
				t.Errorf("%s(AMQP_URL=%q) = %v; want it to say %q", name, u, err, want)
			}
		}
	}
}
