package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/amqp"
	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// PUBLISHER_ADDR is often public (Fly's http_service; metrics were moved
// off it for that reason), and its /readyz answers anyone, without an API
// key. Since issue 15 its reason quotes LastError whole: the redacted
// broker URL (user name, host, port, vhost) and, for TLS, the certificate
// details. The public port should say only the kind of failure (or
// nothing more than before); the full reason belongs on METRICS_ADDR and
// in the logs.
func TestPublicReadyzDoesNotShowTheBroker(t *testing.T) {
	t.Parallel()
	u := brokertest.URLWith(t, refusedPassword, "")
	p, base := startServe(t, []string{"AMQP_URL=" + u, "EXCHANGE=" + brokertest.Name(t), "PUBLISHER_AUTH=none"})
	var reason string
	p.Poll(t, time.Minute, "/readyz to name the refusal", func() bool {
		resp, err := http.Get(base + "/readyz") // no API key: anyone on the internet
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&got)
		reason = fmt.Sprint(got["reason"])
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(reason, amqp.ErrAccessRefused.Error())
	})
	host := strings.TrimPrefix(strings.Split(strings.SplitN(u, "@", 2)[1], "/")[0], "//")
	for _, secret := range []string{host, "guest:", "amqp://"} {
		if strings.Contains(reason, secret) {
			t.Errorf("public /readyz reason shows %q: %s", secret, reason)
		}
	}
}
