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
		{"postgres://h/other?sslmode=disable&database=other", "postgres://h/ef_x?sslmode=disable"},
		// Kept as written: pgconn decodes %20 and would read a '+' as itself.
		{"postgres://h/o?dbname=o&options=-c%20search_path%3Dfoo", "postgres://h/ef_x?options=-c%20search_path%3Dfoo"},
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
	for _, in := range []string{
		"postgres://u:s3cret@h:port/db",
		"postgres://u:s3#cret@h/db", // pgx takes it; url.Parse reads "s3" as a port
		"postgres://u:s3/cret@h/db",
	} {
		_, err := WithDatabase(in, "ef_x")
		if err == nil {
			t.Errorf("%q: no error", in)
			continue
		}
		if strings.Contains(err.Error(), "s3") {
			t.Errorf("%q: the error shows the password: %v", in, err)
		}
	}
}
