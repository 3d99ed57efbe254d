package webhook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/event"
	"github.com/eventfleet/eventfleet/retry"
)

// psql runs sql on database db of the machine's PostgreSQL (127.0.0.1:5432,
// trust auth) and returns its unaligned output.
func psql(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := exec.Command("psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db,
		"-v", "ON_ERROR_STOP=1", "-Atc", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// startRecipe type-checks webhook/receiver/receiver.ts (tsc --strict, with
// the pinned packages of its package.json), runs it with Node against a
// database of its own, and returns its URL and database. It fails, never
// skips, without node, npm or PostgreSQL: the project's machines and CI
// have them.
func startRecipe(t *testing.T, secret string) (dir, url, db string) {
	t.Helper()
	dir = buildRecipe(t)

	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	db = "eventfleet_recipe_" + hex.EncodeToString(suffix)
	psql(t, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { psql(t, "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })

	var stderr bytes.Buffer
	cmd := exec.Command("node", filepath.Join("dist", "receiver.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret, "PORT=0", "HOST=127.0.0.1",
		"DATABASE_URL=postgres://postgres@127.0.0.1:5432/"+db)
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("receiver stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		port, found := strings.CutPrefix(line, "listening on ")
		if !ok || !found {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("receiver did not start (%q):\n%s", line, stderr.String())
		}
		return dir, "http://127.0.0.1:" + port + "/events", db
	case <-time.After(30 * time.Second):
		t.Fatalf("receiver did not start in 30s:\n%s", stderr.String())
	}
	return "", "", ""
}

// jsVerifier checks a request with the Standard Webhooks project's own
// JavaScript library (npm standardwebhooks, pinned in
// receiver/package.json): argv is the secret and files holding the headers
// (JSON) and the body. It exits non-zero when the library refuses.
const jsVerifier = `
import { Webhook } from "standardwebhooks";
import { readFileSync } from "node:fs";
const [secret, headersFile, bodyFile] = process.argv.slice(2);
const headers = JSON.parse(readFileSync(headersFile, "utf8"));
new Webhook(secret).verify(readFileSync(bodyFile), headers);
`

// checkWithJSLibrary: every secret's signature of a request our Handler
// sent verifies with the reference library, and a changed body does not.
func checkWithJSLibrary(t *testing.T, dir string) {
	current, next := testSecret('j', 32), testSecret('k', 64)
	b := signedSetup(t, current+" "+next, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	if err := b.handler.Handle(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	r := b.requests()[0]
	headers := map[string]string{}
	for name := range r.header {
		headers[name] = r.header.Get(name)
	}
	hj, _ := json.Marshal(headers)
	files := map[string][]byte{"check.mjs": []byte(jsVerifier), "headers.json": hj, "body": r.body,
		"tampered": bytes.Replace(r.body, []byte(`"z": 1`), []byte(`"z": 2`), 1)}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(secret, body string) error {
		cmd := exec.Command("node", "check.mjs", secret, "headers.json", body)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	for _, secret := range []string{current, next} {
		if err := run(secret, "body"); err != nil {
			t.Errorf("standardwebhooks refuses our signature: %v", err)
		}
	}
	if err := run(current, "tampered"); err == nil {
		t.Error("standardwebhooks accepts a changed body: the check proves nothing")
	}
}

// TestReceiverRecipe: the README's receiver, type-checked, verifies what a Handler sends
// and handles each event once, duplicates (sequential and concurrent)
// included; what is not signed by our secret, or is too old, gets 401,
// which the Handler treats as permanent.
func TestReceiverRecipe(t *testing.T) {
	t.Parallel()
	current, next := testSecret('c', 32), testSecret('n', 32)
	dir, url, db := startRecipe(t, current)
	t.Run("standardwebhooks library", func(t *testing.T) { checkWithJSLibrary(t, dir) })
	newHandler := func(secrets string) *Handler {
		t.Helper()
		h, err := New(Config{URL: url, Secrets: mustSecrets(t, secrets)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.client.CloseIdleConnections)
		return h
	}
	ev := func(id string) event.Event {
		e := testEvent()
		e.ID, e.Attempt = id, 1
		return e
	}
	ctx := context.Background()
	signed := newHandler(current)

	// Handled, then a redelivery of the same event.
	for attempt := 1; attempt <= 2; attempt++ {
		e := ev("dup-seq")
		e.Attempt = attempt
		if err := signed.Handle(ctx, e); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	// Five deliveries of one event at once: one handles it, four wait on
	// its row, then find it.
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() { errs <- signed.Handle(ctx, ev("dup-concurrent")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent duplicate: %v", err)
		}
	}
	// Rotation: the worker signs with the next secret and the current one.
	if err := newHandler(next+" "+current).Handle(ctx, ev("rotated")); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	// Same id from another source: another event.
	other := ev("dup-seq")
	other.Source = "billing"
	if err := signed.Handle(ctx, other); err != nil {
		t.Fatal(err)
	}

	stale := newHandler(current)
	stale.now = func() time.Time { return time.Now().Add(-6 * time.Minute) }
	unsigned, err := New(Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsigned.client.CloseIdleConnections)
	for name, h := range map[string]*Handler{"wrong secret": newHandler(next), "unsigned": unsigned, "6 minutes old": stale} {
		err := h.Handle(ctx, ev("refused-"+strings.ReplaceAll(name, " ", "-")))
		var serr *StatusError
		if !errors.As(err, &serr) || serr.StatusCode != http.StatusUnauthorized || !retry.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent 401", name, err)
		}
	}
	// A signed request whose body changed on the way.
	_, body, err := newRequest(ctx, url, ev("tampered"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(body, []byte(`"z": 1`), []byte(`"z": 9`), 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(tampered))
	if err != nil {
		t.Fatal(err)
	}
	signHeader(req.Header, mustSecrets(t, current), MessageID(ev("tampered")), time.Now(), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tampered body: status %d, want 401", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()

	got := psql(t, db, "SELECT string_agg(webhook_id, ' ' ORDER BY webhook_id) FROM received_events")
	want := "billing:dup-seq catalog:dup-concurrent catalog:dup-seq catalog:rotated"
	if got != want {
		t.Errorf("handled events: %q, want %q (each once)", got, want)
	}
	if n := psql(t, db, "SELECT count(*) FROM webhook_deliveries"); n != "4" {
		t.Errorf("webhook_deliveries has %s rows, want 4", n)
	}
	// The body arrived as sent, and was parsed as JSON.
	var data map[string]any
	if err := json.Unmarshal([]byte(psql(t, db, "SELECT data FROM received_events WHERE webhook_id = 'catalog:rotated'")), &data); err != nil || data["s"] != "<&>" {
		t.Errorf("stored data %v (%v), want the event's", data, err)
	}
}

// buildRecipe copies the recipe into a temporary directory, installs its
// pinned packages and compiles it (strict TypeScript) to dist/.
func buildRecipe(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()

	for _, f := range []string{"receiver.ts", "tsconfig.json", "package.json"} {
		b, err := os.ReadFile(filepath.Join("receiver", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"npm", "install", "--no-audit", "--no-fund", "--loglevel=error"},
		{filepath.Join("node_modules", ".bin", "tsc"), "-p", "."},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return dir
}
