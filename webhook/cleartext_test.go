package webhook

import "testing"

func TestCleartext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want bool
	}{
		{"https://hooks.example.com/events", false},
		{"http://hooks.example.com/events", true},
		{"HTTP://Hooks.Example.com/events", true},
		{"http://user:pw@203.0.113.7:8080/hook?token=x", true},
		{"http://10.0.0.5/hook", true}, // a LAN is still a network
		{"http://receiver:8081/events", true},
		{"http://localhost:8081/events", false},
		{"http://LOCALHOST./events", false},
		{"http://app.localhost/events", false},
		{"http://127.0.0.1:8081/events", false},
		{"http://127.9.9.9/events", false},
		{"http://[::1]:8081/events", false},
		{"http://[::ffff:127.0.0.1]/events", false},
		{"http://receiver.internal:8080/events", false},
		{"http://top1.nearest.of.receiver.internal/events", false},
		{"http://receiver.flycast/events", false},
		{"http://[fdaa:0:1:a7b::2]:8080/events", false},
		{"http://[fdab::1]/events", true},
		{"http://[2001:db8::1]/events", true},
		{"http://internal.example.com/events", true},
		{"http://example.internal.evil.com/events", true},
		{"http://localhost.evil.com/events", true},
		{"https://receiver.internal/events", false},
		{"http://exa mple.com/", false}, // New refuses it
	}
	for _, tt := range tests {
		if got := Cleartext(tt.url); got != tt.want {
			t.Errorf("Cleartext(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
