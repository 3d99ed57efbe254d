package outbox

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/eventfleet/eventfleet/event"
)

func TestNew_RefusesBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no URL", Config{}, "DatabaseURL is required"},
		{"not a URL", Config{DatabaseURL: "mysql://u:secret@h/db"}, "not a PostgreSQL URL"},
		{"bad table", Config{DatabaseURL: "postgres://h/db", Table: "Robert'); DROP TABLE x;--"}, "lower-case letters"},
		{"three parts", Config{DatabaseURL: "postgres://h/db", Table: "a.b.c"}, "at most schema.table"},
		{"format", Config{DatabaseURL: "postgres://h/db", Format: "kafka"}, `format "kafka"`},
		{"batch", Config{DatabaseURL: "postgres://h/db", Batch: -1}, "Batch -1"},
		{"poll", Config{DatabaseURL: "postgres://h/db", PollInterval: -1}, "PollInterval"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, &fakePublisher{})
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestAdd_RefusesAnInvalidEventInTheAppsTransaction(t *testing.T) {
	_, conn := migrated(t)
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, bad := range []event.Event{
		{Type: "", Data: []byte(`{}`)},
		{Type: "T", Data: []byte(`{not json`)},
		{Type: "T"},
		{Type: "T#", Data: []byte(`{}`)},
		{Type: "T", Data: []byte(`{}`), Headers: map[string]any{"nested": map[string]any{"a": 1}}},
	} {
		if _, err := Add(ctx, tx, bad); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("Add(%+v) = %v, want ErrInvalidEvent", bad, err)
		}
	}
}

// AddSQL writes through database/sql (here the pgx stdlib driver) the same row.
func TestAddSQL(t *testing.T) {
	url, conn := migrated(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := AddSQL(ctx, tx, DefaultTable, event.Event{Type: "T", AggregateID: "a", Data: []byte(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count(*) FROM eventfleet_outbox WHERE id = $1 AND type = 'T' AND data::text = '{\"x\":1}'", id); n != 1 {
		t.Fatalf("%d rows for %s", n, id)
	}
}
