package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// The optional bridges (issue 18) are commented out in docker-compose.yml
// and fly.toml; the tests below check them as they would run uncommented,
// so that a renamed variable or command breaks here, not on the day
// someone uncomments them.

// uncomment returns the lines strictly between the lines "# BEGIN name"
// and "# END name" (after any indentation) with their comment mark taken
// off: "  # redis:" becomes "  redis:", "  # # why" stays a comment. whole
// is text with that done in place; block is those lines alone.
func uncomment(t *testing.T, text, name string) (whole, block string) {
	t.Helper()
	lines := strings.Split(text, "\n")
	var out, in []string
	inside, found := false, false
	for _, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		indent := l[:len(l)-len(trimmed)]
		switch {
		case trimmed == "# BEGIN "+name:
			inside, found = true, true
		case trimmed == "# END "+name:
			inside = false
		case inside && trimmed == "#":
			l = ""
		case inside && strings.HasPrefix(trimmed, "# "):
			l = indent + strings.TrimPrefix(trimmed, "# ")
		case inside:
			t.Fatalf("%q: a line between BEGIN and END %s that is not commented out: %q", name, name, l)
		}
		out = append(out, l)
		if inside && !strings.HasPrefix(trimmed, "# BEGIN") {
			in = append(in, l)
		}
	}
	if !found || inside {
		t.Fatalf("no block between \"# BEGIN %s\" and \"# END %s\"", name, name)
	}
	return strings.Join(out, "\n"), strings.Join(in, "\n")
}

func TestComposeOptionalBridges(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := uncomment(t, string(raw), "optional bridges")
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(whole), &doc); err != nil {
		t.Fatalf("docker-compose.yml with the bridges uncommented does not parse: %v", err)
	}
	if err := interpolateNode(&doc, map[string]string{}, map[*yaml.Node]bool{}); err != nil {
		t.Fatalf("docker-compose.yml with the bridges uncommented: %v", err)
	}
	var on, off composeFile
	if err := doc.Decode(&on); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &off); err != nil {
		t.Fatal(err)
	}
	want := map[string]role{"relay-redis-stream": relayRole, "relay-jetstream": relayRole, "worker-realtime": workerRole}
	for name, s := range on.Services {
		if _, ok := off.Services[name]; ok {
			continue // checked by the other tests
		}
		for _, p := range s.Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("optional service %q publishes %q on every interface; bind it to 127.0.0.1", name, p.Spec)
			}
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("optional service %q has no healthcheck: the services that depend on it cannot wait for it", name)
		}
		if !s.Build {
			continue
		}
		bin := classify(s.Command)
		if w, ok := want[name]; !ok || bin != w {
			t.Errorf("optional service %q runs %q (%v), want one of the bridges: %v", name, s.Command, bin, want)
			continue
		}
		delete(want, name)
		for _, dep := range []string{"rabbitmq"} {
			if s.DependsOn[dep] != "service_healthy" {
				t.Errorf("optional service %q does not wait for %s to be healthy", name, dep)
			}
		}
		for _, v := range s.Environment.Names {
			if _, ok := readBy[bin][v]; !ok {
				t.Errorf("optional service %q sets %s, which the %v does not read (it reads %s)", name, v, bin, known(bin))
			}
		}
		if err := load(bin, s.Environment.Set); err != nil {
			t.Errorf("optional service %q environment fails the %v's config: %v", name, bin, err)
		}
		for dep := range s.DependsOn {
			if _, ok := on.Services[dep]; !ok {
				t.Errorf("optional service %q depends on %q, which is not a service", name, dep)
			}
		}
		if s.StopGracePeriod == "" {
			t.Errorf("optional service %q has no stop_grace_period (the x-eventfleet anchor's)", name)
		}
	}
	for name := range want {
		t.Errorf("docker-compose.yml's optional bridges have no service %q", name)
	}
	if got := on.Services["relay-redis-stream"].Environment.Set["RELAY_SOURCE"]; got != "redis-stream" {
		t.Errorf("relay-redis-stream: RELAY_SOURCE=%q, want redis-stream", got)
	}
	if got := on.Services["worker-realtime"].Environment.Set["HANDLER"]; got != "redis" {
		t.Errorf("worker-realtime: HANDLER=%q, want redis", got)
	}
}

var flyCommentedEnv = regexp.MustCompile(`(?m)^  #([A-Z][A-Z0-9_]*) = "([^"]*)"$`)

// fly.toml's commented [env] lines (RELAY_SOURCE) each work for the relay
// group, uncommented.
func TestFlyOptionalRelaySources(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw, err := os.ReadFile(filepath.Join(root, "fly.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, m := range flyCommentedEnv.FindAllStringSubmatch(string(raw), -1) {
		name, value := m[1], m[2]
		if name == "RELAY_SOURCE" {
			sources = append(sources, value)
		}
		if _, ok := readBy[relayRole][name]; !ok {
			t.Errorf("fly.toml's commented %s = %q: the relay does not read %s", name, value, name)
			continue
		}
		env := b.fly.machineEnv()
		env[name] = value
		if err := load(relayRole, env); err != nil {
			t.Errorf("fly.toml with %s = %q uncommented fails the relay's config: %v", name, value, err)
		}
	}
	if !slices.Equal(sources, []string{"redis-stream", "jetstream"}) {
		t.Errorf("fly.toml's commented RELAY_SOURCE lines: %q, want redis-stream and jetstream", sources)
	}
}

// The commented fly.realtime.toml at the end of fly.toml is a working
// fly.toml for a HANDLER=redis worker app.
func TestFlyRealtimeApp(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(root, "fly.toml"))
	if err != nil {
		t.Fatal(err)
	}
	_, block := uncomment(t, string(raw), "fly.realtime.toml")
	var f flyFile
	if _, err := toml.Decode(block, &f); err != nil {
		t.Fatalf("fly.realtime.toml (the commented block of fly.toml) does not parse: %v", err)
	}
	if f.App == "" || f.Build.Dockerfile != "Dockerfile" {
		t.Errorf("fly.realtime.toml: app %q, dockerfile %q: want an app name and the same Dockerfile", f.App, f.Build.Dockerfile)
	}
	groups := f.groups(workerRole)
	if len(groups) != 1 || len(f.Processes) != 1 {
		t.Fatalf("fly.realtime.toml [processes] %v: want one worker group", f.Processes)
	}
	for name := range f.Env {
		if _, ok := readBy[workerRole][name]; !ok {
			t.Errorf("fly.realtime.toml [env] sets %s, which the worker does not read", name)
		}
	}
	env := f.machineEnv()
	if env["HANDLER"] != "redis" {
		t.Errorf("fly.realtime.toml: HANDLER = %q, want redis", env["HANDLER"])
	}
	env["REDIS_URL"] = "rediss://:pass@host:6379/0" // the secret the block's comment sets
	if err := load(workerRole, env); err != nil {
		t.Errorf("fly.realtime.toml [env] fails the worker's config: %v", err)
	}
	kill, err := f.killTimeout()
	if err != nil {
		t.Fatal(err)
	}
	if drain, err := time.ParseDuration(setting(workerRole, f.env(), "SHUTDOWN_TIMEOUT")); err != nil || kill <= drain {
		t.Errorf("fly.realtime.toml kill_timeout %v is not above SHUTDOWN_TIMEOUT %v (%v)", kill, drain, err)
	}
	c, ok := f.Checks["worker_ready"]
	if !ok || !slices.Equal(c.Processes, groups) || c.Path != "/readyz" || c.Port != 9090 {
		t.Errorf("fly.realtime.toml [checks.worker_ready] = %+v, want /readyz on 9090 for %v", c, groups)
	}
}
