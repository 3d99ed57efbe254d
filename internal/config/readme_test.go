package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/outbox"
	"github.com/eventfleet/eventfleet/tracing"
)

// readmeRow is a row of the README's configuration table.
type readmeRow struct {
	line     int
	vars     []string
	binary   string // as written: "both", "worker", "publisher"
	defaults string // the Default cell
}

var backticked = regexp.MustCompile("`([^`]*)`")

// readmeTable parses the README's "| Variable | Binary | Default | Meaning |" table.
func readmeTable(t *testing.T) []readmeRow {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []readmeRow
	in := false
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "| Variable | Binary | Default | Meaning |"):
			in = true
			continue
		case !in:
			continue
		case !strings.HasPrefix(line, "|"):
			in = false
			continue
		case strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) < 4 {
			t.Fatalf("README.md:%d: a table row of %d cells: %s", i+1, len(cells), line)
		}
		r := readmeRow{line: i + 1, binary: strings.TrimSpace(cells[1]), defaults: strings.TrimSpace(cells[2])}
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			r.vars = append(r.vars, m[1])
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no configuration table")
	}
	return rows
}

// sdkVars are in the table but read by the OpenTelemetry SDK, not by us.
var sdkVars = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"}

// inWords are the README's defaults of the settings whose unset value means
// something said in words rather than loaded as a value (Setting.Defaults
// is empty): the first backticked word of the cell, or the whole cell.
var inWords = map[string]string{
	"APP_NAME":                           "FLY_APP_NAME",
	"FLY_APP_NAME":                       "—",
	"AMQP_TLS_CA_FILE":                   "—",
	"AMQP_TLS_CERT_FILE":                 "—",
	"AMQP_TLS_KEY_FILE":                  "—",
	"AMQP_TLS_SERVER_NAME":               "—",
	"EVENT_TYPES":                        "#",
	"WEBHOOK_URL":                        "—",
	"WEBHOOK_SECRET":                     "—",
	"PUBLISHER_KEYS":                     "—",
	"PUBLISHER_KEYS_FILE":                "—",
	"DATABASE_URL":                       "—",
	"NATS_CREDS_FILE":                    "—",
	"OUTBOX_TABLE":                       outbox.DefaultTable,
	"REDIS_CONSUMER":                     "FLY_MACHINE_ID",
	"OTEL_TRACES_EXPORTER":               tracing.ExporterNone,
	"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
	"OTEL_SDK_DISABLED":                  "false",
}

// TestREADME_SettingsTable: the README's table lists every variable the
// binaries read, and no other, with the binaries that read it and the
// default in force: a default changed in one place only (a library
// constant, this package, the README) fails here.
func TestREADME_SettingsTable(t *testing.T) {
	t.Parallel()
	byVar := map[string][]Setting{}
	for _, s := range Settings() {
		byVar[s.Var] = append(byVar[s.Var], s)
	}
	documented := map[string]bool{}
	for _, r := range readmeTable(t) {
		for _, v := range r.vars {
			documented[v] = true
			if slices.Contains(sdkVars, v) {
				continue
			}
			ss, ok := byVar[v]
			if !ok {
				t.Errorf("README.md:%d: %s is not read by either binary", r.line, v)
				continue
			}
			binary := ss[0].Binary
			for _, s := range ss[1:] {
				if s.Binary != ss[0].Binary {
					binary = "both"
				}
				if !slices.Equal(s.Defaults, ss[0].Defaults) {
					t.Errorf("%s is read with two defaults, %v (%s) and %v (%s): the README has one Default cell",
						v, ss[0].Defaults, ss[0].Binary, s.Defaults, s.Binary)
				}
			}
			if r.binary != binary {
				t.Errorf("README.md:%d: %s: binary %q, want %q", r.line, v, r.binary, binary)
			}
			checkReadmeDefault(t, r, v, ss[0].Defaults)
		}
	}
	for v := range byVar {
		if !documented[v] {
			t.Errorf("README.md: the configuration table has no row for %s", v)
		}
	}
}

// checkReadmeDefault: the cell's first backticked word is the (first)
// default, and every other default is backticked in it too.
func checkReadmeDefault(t *testing.T, r readmeRow, v string, defaults []string) {
	t.Helper()
	if len(defaults) == 0 {
		w, ok := inWords[v]
		if !ok {
			t.Errorf("%s has no default value: say in inWords what the README's Default cell says", v)
			return
		}
		defaults = []string{w}
	}
	var words []string
	for _, m := range backticked.FindAllStringSubmatch(r.defaults, -1) {
		words = append(words, m[1])
	}
	if len(words) == 0 {
		if r.defaults != defaults[0] || len(defaults) > 1 {
			t.Errorf("README.md:%d: %s: default %q, want %s", r.line, v, r.defaults, "`"+strings.Join(defaults, "`, `")+"`")
		}
		return
	}
	if words[0] != defaults[0] {
		t.Errorf("README.md:%d: %s: default `%s`, want `%s`", r.line, v, words[0], defaults[0])
	}
	for _, d := range defaults[1:] {
		if !slices.Contains(words, d) {
			t.Errorf("README.md:%d: %s: default %q does not say `%s`", r.line, v, r.defaults, d)
		}
	}
}
