package amqp_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

func TestSplitURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"amqp://h1/", []string{"amqp://h1/"}},
		{"amqp://h1/,amqp://h2/", []string{"amqp://h1/", "amqp://h2/"}},
		{"amqp://h1/, amqps://u:p@h2:5671/v ,AMQP://h3", []string{"amqp://h1/", "amqps://u:p@h2:5671/v", "AMQP://h3"}},
		// Only a comma a scheme follows ends a URL: any other stays in its
		// URL, as before lists (in a password, also beside an "@" or
		// another comma; in a vhost or query).
		{"amqp://u:pa,ss@h1/", []string{"amqp://u:pa,ss@h1/"}},
		{"amqp://u:pa,ss@h1/,amqp://u:x,y@h2/", []string{"amqp://u:pa,ss@h1/", "amqp://u:x,y@h2/"}},
		{"amqp://app:p@ss,w0rd@h/", []string{"amqp://app:p@ss,w0rd@h/"}},
		{"amqp://app:1234,,5678@h/", []string{"amqp://app:1234,,5678@h/"}},
		{"amqp://h1/v,x?a=b,c", []string{"amqp://h1/v,x?a=b,c"}},
		{"amqp://h1/,", []string{"amqp://h1/,"}},
		// A forgotten scheme is no list: one URL, as before (its redacted
		// form hides it whole, see TestRedactURL_List).
		{"amqp://u:p@h1/,u:p@h2", []string{"amqp://u:p@h1/,u:p@h2"}},
		// One URL is kept as given, so it keeps the errors it always had.
		{" amqp://h1/", []string{" amqp://h1/"}},
	} {
		got, err := amqp.SplitURLs(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("SplitURLs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for in, element := range map[string]int{
		",amqp://h1/":            1,
		"amqp://h1/,,amqp://h2/": 2,
		"amqp://h1/, ,amqp://h2": 2,
	} {
		_, err := amqp.SplitURLs(in)
		var ue *amqp.URLError
		if !errors.As(err, &ue) || ue.Element != element || !strings.Contains(ue.Problem, "empty") {
			t.Errorf("SplitURLs(%q) = %v; want element %d empty", in, err, element)
		}
	}
}

// Each URL of a list is checked, the error names the one at fault, and no
// password of the list is shown.
func TestValidateURL_ListNamesTheElement(t *testing.T) {
	t.Parallel()
	list := "amqp://a:S3cretA@h1/,amqp://b:S3cretB@h2:99999/,amqp://c:S3cretC@h3/"
	err := amqp.ValidateURL(list)
	var ue *amqp.URLError
	if !errors.As(err, &ue) || ue.Element != 2 || !strings.Contains(ue.Problem, "port out of range") {
		t.Fatalf("ValidateURL(list) = %v; want element 2, port out of range", err)
	}
	if strings.Contains(err.Error(), "S3cret") {
		t.Fatalf("error shows a password: %v", err)
	}
	if !strings.Contains(err.Error(), "b:xxxxx@h2:99999") {
		t.Errorf("error does not show the element, redacted: %v", err)
	}
	if err := amqp.ValidateURL("amqp://a:S3cretA@h1/,amqps://b:S3cretB@h2/?cacertfile=/nope.pem"); err == nil ||
		!strings.Contains(err.Error(), "cacertfile") || strings.Contains(err.Error(), "S3cret") {
		t.Errorf("ValidateURL with a per-URL TLS parameter = %v; want its cacertfile named, no password", err)
	}
	if err := amqp.ValidateURL("amqp://a:S3cretA@h1/,amqps://b:S3cretB@h2/"); err != nil {
		t.Errorf("ValidateURL(two good URLs) = %v", err)
	}
	// AMQP_TLS_* need every URL to be amqps://.
	err = amqp.ValidateTLS("amqps://h1/,amqp://h2/", amqp.TLSFiles{ServerName: "broker"})
	if te := (*amqp.TLSFileError)(nil); !errors.As(err, &te) || !strings.Contains(te.Problem, "URL 2 of the list") {
		t.Errorf("ValidateTLS(amqps, amqp) = %v; want element 2 named", err)
	}
	for name, newer := range map[string]func() error{
		"NewPublisher": func() error { _, err := amqp.NewPublisher(amqp.PublisherConfig{URL: list}); return err },
		"NewWorker": func() error {
			_, err := amqp.NewWorker(amqp.WorkerConfig{URL: list, App: "a"}, event.HandlerFunc(func(context.Context, event.Event) error { return nil }))
			return err
		},
	} {
		err := newer()
		var ce *amqp.ConfigError
		if !errors.As(err, &ce) || ce.Field != "URL" || strings.Contains(err.Error(), "S3cret") || !errors.As(err, &ue) || ue.Element != 2 {
			t.Errorf("%s(list) = %v; want a ConfigError for URL naming element 2, no password", name, err)
		}
	}
}

func TestRedactURL_List(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"amqp://a:S3cretA@h1/,amqps://b:S3cretB@h2/": "amqp://a:xxxxx@h1/,amqps://b:xxxxx@h2/",
		"amqp://a:S3c,retA@h1/,amqp://b:S3cretB@h2/": "amqp://a:xxxxx@h1/,amqp://b:xxxxx@h2/",
		"amqp://a:S3cretA@h1/,,amqp://b:S3cretB@h2/": "amqp://a:xxxxx@h1/,,amqp://b:xxxxx@h2/",
		// A forgotten scheme: one URL, with an "@" after its host or in its
		// password; nothing of either password shows.
		"amqp://a:S3cretA@h1/,b:S3cretB@h2": "<unparsable AMQP URL>",
		"amqp://a:S3cretA@h1,b:S3cretB@h2":  "amqp://a:xxxxx@h2",
	} {
		if got := amqp.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Dial over a list with a dead node first connects to the live one,
// wherever it starts; with every node dead its error names each attempt.
func TestDial_ListSkipsADeadNode(t *testing.T) {
	t.Parallel()
	dead := "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(brokertest.FreePort(t)) + "/"
	list := dead + "," + brokertest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 6 { // the start is random: both orders, most likely
		c, err := amqp.Dial(ctx, list, "dial-list-test")
		if err != nil {
			t.Fatalf("Dial(dead, live) = %v", err)
		}
		_ = c.Close()
	}
	other := "amqp://guest:S3cret@127.0.0.1:" + strconv.Itoa(brokertest.FreePort(t)) + "/"
	_, err := amqp.Dial(ctx, dead+","+other, "dial-list-test")
	if err == nil || strings.Count(err.Error(), "connection refused") != 2 || strings.Contains(err.Error(), "S3cret") {
		t.Fatalf("Dial(dead, dead) = %v; want both refusals, no password", err)
	}
}
