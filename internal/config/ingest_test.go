package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/ingest"
)

// TestPublisher_IngestSettings: the ingest's variables, their defaults and
// their errors, each naming the variable.
func TestPublisher_IngestSettings(t *testing.T) {
	t.Parallel()
	c, err := LoadPublisher(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth != AuthKeys || c.MaxEvents != ingest.DefaultMaxEvents || c.MaxInFlight != ingest.DefaultMaxInFlight ||
		c.Rate != 0 || c.MaxDepth != ingest.DefaultMaxDepth {
		t.Errorf("defaults %+v", c)
	}
	c, err = LoadPublisher(map[string]string{"PUBLISHER_MAX_EVENTS": "20000", "PUBLISHER_RATE": "0.5"})
	if err != nil || c.MaxInFlight != 20000 || c.Rate != 0.5 {
		t.Errorf("MAX_EVENTS over the in-flight default: %v, in flight %d, rate %v; want in flight raised to 20000", err, c.MaxInFlight, c.Rate)
	}
	for _, tt := range []struct{ env, value, hint string }{
		{"PUBLISHER_AUTH", "token", "use keys"},
		{"PUBLISHER_MAX_EVENTS", "0", "must be positive"},
		{"PUBLISHER_MAX_DEPTH", "-1", "must be positive"},
		{"PUBLISHER_RATE", "-2", "events per second"},
		{"PUBLISHER_RATE", "fast", "not a valid number"},
		{"PUBLISHER_MAX_IN_FLIGHT", "100", "at least PUBLISHER_MAX_EVENTS (500)"},
	} {
		_, err := LoadPublisher(map[string]string{tt.env: tt.value})
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tt.env || !strings.Contains(err.Error(), tt.hint) {
			t.Errorf("LoadPublisher(%s=%s) = %v; want an error naming it with %q", tt.env, tt.value, err, tt.hint)
		}
	}
}

// TestPublisher_LoadKeys: keys from the variable or the file, never both;
// no key under PUBLISHER_AUTH=keys is ErrNoKeys; a bad line names its
// variable and line, never the secret.
func TestPublisher_LoadKeys(t *testing.T) {
	t.Parallel()
	key, err := ingest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	line := "billing " + ingest.HashKey(key)
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte("# rotated 2026-12\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(env map[string]string) (Publisher, error) {
		c, err := LoadPublisher(env)
		if err != nil {
			t.Fatalf("LoadPublisher(%v): %v", env, err)
		}
		return c, c.LoadKeys()
	}
	for _, env := range []map[string]string{{"PUBLISHER_KEYS": line}, {"PUBLISHER_KEYS_FILE": file}} {
		c, err := load(env)
		if err != nil || c.Keys.Len() != 1 {
			t.Errorf("%v: %v, %d keys", env, err, c.Keys.Len())
			continue
		}
		if caller, ok := c.Keys.Authenticate(key); !ok || caller.Name != "billing" {
			t.Errorf("%v: the key does not authenticate billing", env)
		}
	}
	if _, err := load(map[string]string{}); !errors.Is(err, ErrNoKeys) {
		t.Errorf("no keys: %v, want ErrNoKeys", err)
	}
	if c, err := load(map[string]string{"PUBLISHER_AUTH": "none"}); err != nil || c.Keys.Len() != 0 {
		t.Errorf("PUBLISHER_AUTH=none without keys: %v", err)
	}
	for _, tt := range []struct {
		env       map[string]string
		varName   string
		hint      string
		forbidden string
	}{
		{map[string]string{"PUBLISHER_KEYS": line, "PUBLISHER_KEYS_FILE": file}, "PUBLISHER_KEYS_FILE", "set one of them", ""},
		{map[string]string{"PUBLISHER_KEYS_FILE": file + ".missing"}, "PUBLISHER_KEYS_FILE", "cannot read it", ""},
		{map[string]string{"PUBLISHER_KEYS": line + ";ops " + key}, "PUBLISHER_KEYS", "line 2", key},
	} {
		_, err := load(tt.env)
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tt.varName || !strings.Contains(err.Error(), tt.hint) {
			t.Errorf("%v: %v, want an error naming %s with %q", tt.env, err, tt.varName, tt.hint)
		}
		if tt.forbidden != "" && err != nil && strings.Contains(err.Error(), tt.forbidden) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
}
