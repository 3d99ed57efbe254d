package config

import (
	"strings"
	"testing"
)

// A DATABASE_URL whose password has an unescaped '#' (pgx accepts it, and
// the relay logs the redacted URL at start), a bad %-escape or a space
// (refused at start, the value quoted in the error) must not show the
// password: url.Parse fails on all three, and the fallback only knew the
// key=value form.
func TestRedactDSN_URLThatURLParseRefuses(t *testing.T) {
	for _, dsn := range []string{
		"postgres://app:s3cr#et@db.internal:5432/app",
		"postgres://app:s3cr%zzet@db.internal:5432/app",
		"postgres://app:s3cr et@db.internal:5432/app",
		"postgres://app:s3cr@et@db.internal:5432/app?sslmode=require",
	} {
		got := RedactDSN(dsn)
		if strings.Contains(got, "s3cr") || strings.Contains(got, "et@") {
			t.Errorf("RedactDSN(%q) = %q: the password shows", dsn, got)
		}
		if !strings.Contains(got, "db.internal:5432/app") {
			t.Errorf("RedactDSN(%q) = %q: the host and database should stay", dsn, got)
		}
		if _, err := LoadRelay(map[string]string{"DATABASE_URL": dsn}); err != nil && strings.Contains(err.Error(), "s3cr") {
			t.Errorf("DATABASE_URL error shows the password: %v", err)
		}
	}
}
