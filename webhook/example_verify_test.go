package webhook_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/eventfleet/eventfleet/webhook"
)

// A Go receiver: read the raw body, verify, and only then decode it.
func ExampleVerify() {
	secrets, err := webhook.ParseSecrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	receive := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err := webhook.Verify(secrets, r.Header, body, time.Now()); err != nil {
			// 401 dead-letters the event at once: replay it once the
			// secrets agree.
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// Deduplicate on r.Header.Get("webhook-id"), then handle body.
		w.WriteHeader(http.StatusNoContent)
	}

	body := `{"test": 2432232314}`
	req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
	now := time.Now()
	req.Header.Set("webhook-id", "catalog:0190c0de-0000-7000-8000-000000000001")
	req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
	req.Header.Set("webhook-signature", webhook.Sign(secrets, "catalog:0190c0de-0000-7000-8000-000000000001", now, []byte(body)))
	rec := httptest.NewRecorder()
	receive(rec, req)
	fmt.Println(rec.Code)

	err = webhook.Verify(secrets, http.Header{}, []byte(body), now)
	fmt.Println(errors.Is(err, webhook.ErrNoSignature))
	// Output:
	// 204
	// true
}
