package ingest

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
)

// The JSON answers of POST /events.
type (
	acceptedResponse struct {
		IDs []string `json:"ids"`
	}

	errorResponse struct {
		Error string `json:"error"`
		// Invalid lists the bad elements of an array, by index.
		Invalid []invalidEvent `json:"invalid,omitempty"`
	}

	invalidEvent struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	}

	// unconfirmedResponse is a 503: the client should publish the
	// unconfirmed events again, with the same ids so that consumers can
	// drop duplicates.
	unconfirmedResponse struct {
		Error       string   `json:"error"`
		Confirmed   []string `json:"confirmed"`
		Unconfirmed []string `json:"unconfirmed"`
	}
)

// isJSON accepts application/json, text/json and any +json type.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
