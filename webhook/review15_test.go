package webhook

import (
	"context"
	"testing"
)

// The TypeScript recipe's parseSecrets accepts "whsec_" with nothing (or
// anything not base64) after it: Buffer.from(..., "base64") never fails,
// so WEBHOOK_SECRET=whsec_$UNSET_VAR starts a receiver whose key is
// empty, and anyone can sign for it. ParseSecret, the Go side, refuses
// keys under MinSecretLen bytes; the recipe should too (refuse to start).
// Here a request signed with the empty key must not be handled.
func TestReview15_RecipeRefusesAnEmptyKey(t *testing.T) {
	t.Parallel()
	_, url, _ := startRecipe(t, "whsec_")
	h, err := New(Config{URL: url, Secrets: []Secret{{key: []byte{}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.client.CloseIdleConnections)
	e := testEvent()
	e.ID, e.Attempt = "forged", 1
	if err := h.Handle(context.Background(), e); err == nil {
		t.Fatal("the recipe handled a request signed with an empty key (WEBHOOK_SECRET=whsec_)")
	}
}
