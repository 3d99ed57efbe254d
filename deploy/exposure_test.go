package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/eventfleet/eventfleet/amqp"
)

// What the deployment files expose (issue 14): compose is a local demo and
// publishes nothing beyond the host; its credentials come from the
// environment, with public demo defaults; Fly bounds the requests a Machine
// takes and keeps keys in secrets.

// demoKey is the documented public demo API key of docker-compose.yml.
var demoKey = regexp.MustCompile(`efk_demo_[A-Za-z0-9_]+`)

// envSubst is a value that is only a ${NAME:-default} substitution.
var envSubst = regexp.MustCompile(`^\$\{[A-Z_][A-Z0-9_]*(:-[^}]*)?\}$`)

// amqpURLCreds splits the user and password of an AMQP URL as written,
// before interpolation.
var amqpURLCreds = regexp.MustCompile(`^amqps?://(\$\{[^}]*\}):(\$\{[^}]*\})@`)

func TestComposePortsOnLoopback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, name := range slices.Sorted(maps.Keys(b.compose.Services)) {
		for _, p := range b.compose.Services[name].Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("docker-compose.yml service %q publishes %q on every interface of the host; bind it to loopback: \"127.0.0.1:%s:%s\"",
					name, p.Spec, p.Target, p.Target)
			}
		}
	}
}

func TestComposeBrokerCredentialsFromEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	broker, ok := b.rawCompose.Services["rabbitmq"]
	if !ok {
		t.Fatal("docker-compose.yml has no rabbitmq service")
	}
	user, pass := broker.Environment.Set["RABBITMQ_DEFAULT_USER"], broker.Environment.Set["RABBITMQ_DEFAULT_PASS"]
	for v, val := range map[string]string{"RABBITMQ_DEFAULT_USER": user, "RABBITMQ_DEFAULT_PASS": pass} {
		if !envSubst.MatchString(val) {
			t.Errorf("docker-compose.yml rabbitmq sets %s = %q; take it from the environment with a demo default: ${RABBITMQ_USER:-eventfleet}, ${RABBITMQ_PASS:-eventfleet-demo}", v, val)
		}
	}
	if got := b.compose.Services["rabbitmq"].Environment.Set["RABBITMQ_DEFAULT_USER"]; got == "guest" || got == "" {
		t.Errorf("docker-compose.yml: the broker's default user is %q; guest is an administrator everyone knows, name another", got)
	}

	for _, name := range slices.Sorted(maps.Keys(b.rawCompose.Services)) {
		s := b.rawCompose.Services[name]
		if u, ok := s.Environment.Set["AMQP_URL"]; ok {
			m := amqpURLCreds.FindStringSubmatch(u)
			if m == nil {
				t.Errorf("docker-compose.yml service %q: AMQP_URL %q does not take its user and password from the environment; write amqp://%s:%s@rabbitmq:5672/",
					name, amqp.RedactURL(u), user, pass)
			} else if m[1] != user || m[2] != pass {
				t.Errorf("docker-compose.yml service %q: AMQP_URL's user and password %s:%s differ from the broker's %s:%s; use the same variables and defaults",
					name, m[1], m[2], user, pass)
			}
		}
		for v, want := range map[string]string{"RABBITMQ_USER": user, "RABBITMQ_PASS": pass} {
			if got, ok := s.Environment.Set[v]; ok && got != want {
				t.Errorf("docker-compose.yml service %q sets %s = %q, the broker's is %q; use the same", name, v, got, want)
			}
		}
	}
}

func TestComposeDemoKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.Compact(slices.Sorted(slices.Values(demoKey.FindAllString(string(raw), -1))))
	if len(keys) != 1 {
		t.Fatalf("docker-compose.yml documents demo keys %q; document exactly one public efk_demo_… key in the header comment", keys)
	}
	key := keys[0]
	if !strings.Contains(string(raw), "Authorization: Bearer "+key) {
		t.Errorf("docker-compose.yml: the header's curl does not send -H 'Authorization: Bearer %s'", key)
	}
	sum := sha256.Sum256([]byte(key))
	want := hex.EncodeToString(sum[:])

	found := false
	for name, s := range b.compose.appServices() {
		if classify(s.Command) != publisherRole {
			continue
		}
		found = true
		if a, ok := s.Environment.Set["PUBLISHER_AUTH"]; ok && a != "keys" {
			t.Errorf("docker-compose.yml service %q sets PUBLISHER_AUTH=%s; the demo wires a key, leave it at keys", name, a)
		}
		lines := strings.FieldsFunc(s.Environment.Set["PUBLISHER_KEYS"], func(r rune) bool { return r == ';' || r == '\n' })
		if !slices.ContainsFunc(lines, func(l string) bool { f := strings.Fields(l); return len(f) >= 2 && f[1] == want }) {
			t.Errorf("docker-compose.yml service %q: PUBLISHER_KEYS %q has no line with sha256(%s) = %s; the documented demo key would get 401",
				name, s.Environment.Set["PUBLISHER_KEYS"], key, want)
		}
		if strings.Contains(b.rawCompose.Services[name].Environment.Set["PUBLISHER_KEYS"], "efk_") {
			t.Errorf("docker-compose.yml service %q: PUBLISHER_KEYS holds a key itself; put its SHA-256 hex there", name)
		}
	}
	if !found {
		t.Error("docker-compose.yml runs no publisher")
	}
}

func TestComposeBoundsUnroutedQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var setupSvc string
	for _, name := range slices.Sorted(maps.Keys(b.compose.Services)) {
		s := b.compose.Services[name]
		if !bool(s.Build) && strings.Contains(strings.Join(s.Command, " "), "declare policy") {
			setupSvc = name
		}
	}
	if setupSvc == "" {
		t.Fatal("docker-compose.yml has no service that declares the unrouted queue's policy (rabbitmqadmin declare policy …); without it a flood fills the broker's disk")
	}
	s := b.compose.Services[setupSvc]
	if cond := s.DependsOn["rabbitmq"]; cond != "service_healthy" {
		t.Errorf("docker-compose.yml service %q: depends_on rabbitmq has condition %q; use service_healthy", setupSvc, cond)
	}
	cmd := strings.Join(s.Command, " ")
	for name, svc := range b.compose.appServices() {
		// Both publish: serve the events it takes, the relay its rows.
		if r := classify(svc.Command); r != publisherRole && r != relayRole {
			continue
		}
		pol := amqp.NewUnroutedPolicy(setting(publisherRole, svc.Environment.Set, "EXCHANGE"))
		for _, want := range []string{"name=" + pol.Name, "pattern=" + pol.Pattern, "definition=" + pol.Definition(),
			"apply-to=queues", "priority=" + strconv.Itoa(pol.Priority)} {
			if !strings.Contains(cmd, want) {
				t.Errorf("docker-compose.yml service %q does not declare %s; the %q's unrouted queue is %s (amqp.NewUnroutedPolicy)",
					setupSvc, want, name, amqp.UnroutedQueue(setting(publisherRole, svc.Environment.Set, "EXCHANGE")))
			}
		}
		if cond := svc.DependsOn[setupSvc]; cond != "service_completed_successfully" {
			t.Errorf("docker-compose.yml service %q: depends_on %s has condition %q; use service_completed_successfully, so it publishes nothing while the unrouted queue is unbounded",
				name, setupSvc, cond)
		}
	}
}

func TestFlyConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.fly.HTTPService == nil || b.fly.HTTPService.Concurrency == nil {
		t.Fatal("fly.toml has no [http_service.concurrency]; without a hard_limit Fly sends a Machine any number of requests")
	}
	c := b.fly.HTTPService.Concurrency
	if c.Type != "requests" {
		t.Errorf("fly.toml [http_service.concurrency] type = %q; count requests (one keep-alive connection carries many)", c.Type)
	}
	if c.SoftLimit <= 0 || c.HardLimit < c.SoftLimit {
		t.Errorf("fly.toml [http_service.concurrency] soft_limit = %d, hard_limit = %d; set 0 < soft_limit ≤ hard_limit", c.SoftLimit, c.HardLimit)
	}
}

func TestFlyKeysAreSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, v := range []string{"PUBLISHER_KEYS", "PUBLISHER_KEYS_FILE"} {
		if _, ok := b.fly.Env[v]; ok {
			t.Errorf("fly.toml [env] sets %s; keep keys in `fly secrets set PUBLISHER_KEYS=…`", v)
		}
	}
	if a, ok := b.fly.Env["PUBLISHER_AUTH"]; ok && a != "keys" {
		t.Errorf("fly.toml [env] sets PUBLISHER_AUTH = %v; the public service must require keys", a)
	}
	raw, err := os.ReadFile(filepath.Join(root, "fly.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fly secrets set PUBLISHER_KEYS=", "publisher key new", "set_policy " + amqp.NewUnroutedPolicy(setting(publisherRole, b.fly.env(), "EXCHANGE")).Name} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("fly.toml's comments do not show %q", want)
		}
	}
}
