package config

import (
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/outbox"
)

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db":                   "postgres://u:xxxxx@h:5432/db",
		"postgresql://u@h/db?password=secret&sslmode=off": "postgresql://u@h/db?password=xxxxx&sslmode=off",
		"host=h user=u password=secret dbname=d":          "host=h user=u password=xxxxx dbname=d",
		"host=h password='se cret' dbname=d":              "host=h password=xxxxx dbname=d",
		"host=h PASSWORD = secret":                        "host=h PASSWORD = xxxxx",
		"mysql://u:secret@h/db":                           "mysql://u:xxxxx@h/db",
	} {
		got := RedactDSN(in)
		if got != want || strings.Contains(got, "secret") {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadRelay_Defaults(t *testing.T) {
	c, err := LoadRelay(map[string]string{"DATABASE_URL": "postgres://h/db"})
	if err != nil {
		t.Fatal(err)
	}
	o := c.OutboxConfig()
	if o.Format != "eventfleet" || o.Batch != outbox.DefaultBatch || o.KeepProcessed || o.PublishTimeout != c.Timeout {
		t.Fatalf("outbox config %+v", o)
	}
	c, err = LoadRelay(map[string]string{"DATABASE_URL": "postgres://h/db", "OUTBOX_RETENTION": "0", "OUTBOX_FORMAT": "event_store"})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.OutboxConfig(); !o.KeepProcessed || o.Format != "event_store" {
		t.Fatalf("OUTBOX_RETENTION=0: %+v", o)
	}
}
