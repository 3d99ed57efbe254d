package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eventfleet/eventfleet/internal/config"
)

// TestCLI covers what the worker does before it touches a broker: commands,
// help, and settings it refuses. None of these cases needs a broker; AMQP_URL
// points where nothing listens.
func TestCLI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		env        []string
		wantCode   int
		wantStdout []string // substrings; nil means stdout must be empty
		wantStderr []string
		notStderr  []string
	}{
		{name: "-h", args: []string{"-h"}, wantStdout: []string{"Usage: worker", "run", "WORKER_PREFETCH", "WEBHOOK_URL", "SHUTDOWN_TIMEOUT"}},
		{name: "--help", args: []string{"--help"}, wantStdout: []string{"Usage: worker"}},
		{name: "run -h", args: []string{"run", "-h"}, wantStdout: []string{"Usage: worker"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2,
			wantStderr: []string{`unknown command "frobnicate"`, "Usage: worker"}},
		{name: "run with an argument", args: []string{"run", "now"}, wantCode: 2,
			wantStderr: []string{`unexpected argument "now"`}},
		{name: "prefetch not a number", env: []string{"WORKER_PREFETCH=abc"}, wantCode: 2,
			wantStderr: []string{"WORKER_PREFETCH", "abc"}},
		{name: "run: prefetch not a number", args: []string{"run"}, env: []string{"WORKER_PREFETCH=abc"}, wantCode: 2,
			wantStderr: []string{"WORKER_PREFETCH"}},
		{name: "wildcard glued to a word", env: []string{"EVENT_TYPES=*Event"}, wantCode: 2,
			wantStderr: []string{"EVENT_TYPES", "whole dot-separated words", "would match nothing", `"*Event" does not match "CardAddedToLibraryEvent"`}},
		{name: "webhook without URL", env: []string{"HANDLER=webhook"}, wantCode: 2,
			wantStderr: []string{"WEBHOOK_URL", "required when HANDLER=webhook"}},
		{name: "webhook URL without host", env: []string{"HANDLER=webhook", "WEBHOOK_URL=http://:8080/hook?token=t0ken"}, wantCode: 2,
			wantStderr: []string{"WEBHOOK_URL", "no host"}, notStderr: []string{"t0ken"}},
		{name: "unknown handler", env: []string{"HANDLER=pigeon"}, wantCode: 2,
			wantStderr: []string{"HANDLER", "webhook (POST to WEBHOOK_URL) or redis (PUBLISH to REDIS_CHANNEL)"}},
		{name: "bad duration", env: []string{"SHUTDOWN_TIMEOUT=soon"}, wantCode: 2,
			wantStderr: []string{"SHUTDOWN_TIMEOUT", "duration"}},
		{name: "unknown topology mode", env: []string{"TOPOLOGY=lazy"}, wantCode: 2,
			wantStderr: []string{"TOPOLOGY", "lazy", "declare", "passive"}},
		{name: "app name of another app's exchange", env: []string{"APP_NAME=billing.hops"}, wantCode: 2,
			wantStderr: []string{"APP_NAME", `"billing.hops"`, `app "billing"'s exchange`}},
		{name: "dlq: app name of another app's delay queue", args: []string{"dlq", "peek"}, env: []string{"APP_NAME=billing.retry.1s"}, wantCode: 2,
			wantStderr: []string{"APP_NAME", `".retry."`}},
		{name: "bad broker URL hides the password", env: []string{"AMQP_URL=http://u:s3cr3tpw@host/"}, wantCode: 2,
			wantStderr: []string{"AMQP_URL"}, notStderr: []string{"s3cr3tpw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/", "APP_NAME": "cli-test"}
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			p := startWorker(t, env, tt.args...)
			if code := p.wait(30 * time.Second); code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, p.Stdout.String(), p.Stderr.String())
			}
			stdout, stderr := p.Stdout.String(), p.Stderr.String()
			if tt.wantStdout == nil && stdout != "" {
				t.Errorf("stdout is for event lines only, got %q", stdout)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout does not mention %q:\n%s", want, stdout)
				}
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not mention %q:\n%s", want, stderr)
				}
			}
			for _, bad := range tt.notStderr {
				if strings.Contains(stderr, bad) {
					t.Errorf("stderr leaks %q:\n%s", bad, stderr)
				}
			}
		})
	}
}

// TestUsage_ListsEverySetting keeps the help in step with internal/config.
func TestUsage_ListsEverySetting(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	usage(&b)
	var check func(reflect.Type)
	check = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Anonymous {
				check(f.Type)
				continue
			}
			if name := f.Tag.Get("env"); name != "" && !strings.Contains(b.String(), "  "+name+" ") {
				t.Errorf("usage does not list %s", name)
			}
		}
	}
	check(reflect.TypeFor[config.Worker]())
}
