package ingest

import (
	"encoding/json"
	"fmt"
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

// writeJSON answers v. It does not escape <, > and & as \u003c…: the answer
// is application/json with nosniff, never read as HTML, and unescaped an id
// of 255 bytes takes at most 512 in JSON (a '"' or '\\' takes 2) instead
// of 1,532 (a '<' takes 6), which bounds the answers that list ids.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers {"error": message}.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, errorResponse{Error: fmt.Sprintf(format, args...)})
}
