package pgdsn

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestWithDatabase_URLAndKeyValueForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/ef_x?sslmode=disable"},
		{"postgresql://u:p%23w@h/", "postgresql://u:p%23w@h/ef_x"},
		{"postgres://h/other?dbname=other&sslmode=disable", "postgres://h/ef_x?sslmode=disable"},
		{"host=127.0.0.1 port=5432 user=postgres", "host=127.0.0.1 port=5432 user=postgres dbname=ef_x"},
		{"host=h dbname=postgres sslmode=disable", "host=h dbname=postgres sslmode=disable dbname=ef_x"},
	} {
		got, err := WithDatabase(tc.in, "ef_x")
		if err != nil || got != tc.want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			continue
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "ef_x" {
			t.Errorf("%q: pgx reads database %q (%v), want ef_x", got, cfg.Database, err)
		}
	}
}

func TestWithDatabase_BadURLHidesItsPassword(t *testing.T) {
	t.Parallel()
	_, err := WithDatabase("postgres://u:s3cret@h:port/db", "ef_x")
	if err == nil {
		t.Fatal("a URL with a bad port: no error")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
}
