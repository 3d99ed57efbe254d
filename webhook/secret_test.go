package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// testSecret returns a whsec_ secret of n bytes, each byte seed.
func testSecret(seed byte, n int) string {
	return SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(seed)), n)))
}

func mustSecrets(t *testing.T, s string) []Secret {
	t.Helper()
	secrets, err := ParseSecrets(s)
	if err != nil {
		t.Fatalf("ParseSecrets: %v", err)
	}
	return secrets
}

func TestParseSecrets(t *testing.T) {
	t.Parallel()
	good, other := testSecret('a', 32), testSecret('b', 24)
	// The body of a secret that must never show in an error.
	const leak = "c2VjcmV0LXNlY3JldC1zZWNyZXQ"
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr string // "" means valid
	}{
		{"empty", "", 0, ""},
		{"blank", "  \n", 0, ""},
		{"one", good, 1, ""},
		{"rotation", good + " " + other, 2, ""},
		{"extra spaces", "  " + good + "   " + other + "\n", 2, ""},
		{"64 bytes", testSecret('d', 64), 1, ""},
		{"no prefix", leak + "=", 0, "must start with whsec_"},
		{"not base64", "whsec_" + leak + "!!", 0, "not standard base64"},
		{"unpadded", "whsec_" + leak, 0, "not standard base64"},
		{"too short", testSecret('e', 16), 0, "16 bytes, want 24 to 64"},
		{"too long", testSecret('f', 65), 0, "65 bytes, want 24 to 64"},
		{"comma separated", good + "," + other, 0, "not standard base64"},
		{"second bad", good + " whsec_" + leak + "!!", 0, "secret 2 of 2: the part after whsec_ is not standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSecrets(tt.in)
			if tt.wantErr == "" {
				if err != nil || len(got) != tt.n {
					t.Fatalf("got %d secrets, %v; want %d", len(got), err, tt.n)
				}
				return
			}
			if !errors.Is(err, ErrSecretFormat) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want ErrSecretFormat saying %q", err, tt.wantErr)
			}
			for _, part := range append(strings.Fields(tt.in), leak[:8], good[6:14]) {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error %q quotes the secret", err)
				}
			}
		})
	}
}

func TestSecret_PrintsHidden(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, testSecret('a', 32))[0]
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s), fmt.Sprint([]Secret{s}), logged.String()} {
		if strings.Contains(out, "YWFh") || strings.Contains(out, "aaa") || strings.Contains(out, "616161") {
			t.Errorf("%q shows the key", out)
		}
	}
}
