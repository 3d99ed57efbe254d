package event

import gojson "github.com/goccy/go-json"

// ValidJSON reports whether b is valid JSON: the same answer as
// encoding/json.Valid (checked by FuzzValidJSON against it), about 6-12×
// faster. It runs on every event published and every delivery consumed;
// with encoding/json it was the largest item in the publisher's CPU profile
// after the socket writes (19%), and 7.5% of a no-op worker's.
func ValidJSON(b []byte) bool { return gojson.Valid(b) }
