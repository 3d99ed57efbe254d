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

// AMQP_URL may list several URLs; each is checked, and an error names
// AMQP_URL, the element and what is wrong, never a password of the list.
func TestLoad_AMQPURLList(t *testing.T) {
	t.Parallel()
	loads := map[string]func(map[string]string) error{
		"LoadBroker":    func(e map[string]string) error { _, err := LoadBroker(e); return err },
		"LoadWorker":    func(e map[string]string) error { _, err := LoadWorker(e); return err },
		"LoadPublisher": func(e map[string]string) error { _, err := LoadPublisher(e); return err },
		"LoadInspect":   func(e map[string]string) error { _, err := LoadInspect(e); return err },
	}
	good := "amqp://a:S3cretA@rabbit-1:5672/prod, amqps://b:S3cretB@rabbit-2/prod?heartbeat=5,amqp://a:S3c,retC@rabbit-3/prod"
	for name, load := range loads {
		if err := load(map[string]string{"AMQP_URL": good}); err != nil {
			t.Errorf("%s(AMQP_URL=three nodes) = %v", name, err)
		}
	}
	w, err := LoadWorker(map[string]string{"AMQP_URL": good})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.WorkerConfig(nil, nil).URL; got != good {
		t.Errorf("WorkerConfig URL = %q, want the list as given", got)
	}
	for u, want := range map[string]string{
		"amqp://a:S3cretA@h1/,amqp://b:S3cretB@h2:99999/": "URL 2 of the comma-separated list, amqp://b:xxxxx@h2:99999/, is not a usable AMQP URL: port out of range",
		"amqp://a:S3cretA@h1/,b:S3cretB@h2/":              `an "@" after the host; in a list every URL starts with amqp://`,
		"amqp://a:S3cretA@h1/,,amqp://b:S3cretB@h2/":      "URL 2 of the comma-separated list is empty",
	} {
		for name, load := range loads {
			err := load(map[string]string{"AMQP_URL": u})
			var ce *Error
			switch {
			case !errors.As(err, &ce) || ce.Var != "AMQP_URL":
				t.Errorf("%s(AMQP_URL=%q) = %v; want an error naming AMQP_URL", name, u, err)
			case strings.Contains(err.Error(), "S3cret"):
				t.Errorf("%s(AMQP_URL=%q): error shows a password: %v", name, u, err)
			case !strings.Contains(err.Error(), want):
				t.Errorf("%s(AMQP_URL=%q) = %v; want it to say %q", name, u, err, want)
			}
		}
	}
	// AMQP_TLS_* apply to every URL, so each must be amqps://.
	_, err = LoadBroker(map[string]string{"AMQP_URL": "amqps://h1/,amqp://h2/", "AMQP_TLS_SERVER_NAME": "rabbit"})
	if ce := (*Error)(nil); !errors.As(err, &ce) || ce.Var != "AMQP_TLS_SERVER_NAME" || !strings.Contains(err.Error(), "URL 2 of the list") {
		t.Errorf("LoadBroker(amqps and amqp with AMQP_TLS_SERVER_NAME) = %v; want AMQP_TLS_SERVER_NAME and URL 2 named", err)
	}
}
