package deploy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/eventfleet/eventfleet/internal/config"
)

// root is the repository root, where the deployment files live.
const root = ".."

// The commands the image can run, and the binaries the Dockerfile must build
// for them, keyed by path in the image.
var (
	publisherCmd = []string{"/app/publisher", "serve"}
	workerCmds   = [][]string{{"/app/worker"}, {"/app/worker", "run"}}
	relayCmd     = []string{"/app/publisher", "relay"}
	migrateCmd   = []string{"/app/publisher", "relay", "migrate"}
	binaries     = map[string]string{"/app/publisher": "./cmd/publisher", "/app/worker": "./cmd/worker"}
)

// flySecretAMQPURL and flySecretDatabaseURL stand in for the AMQP_URL and
// DATABASE_URL secrets when the fly.toml [env] is validated; they are the
// forms the comment at the top of fly.toml shows.
const (
	flySecretAMQPURL     = "amqps://user:pass@host/vhost"
	flySecretDatabaseURL = "postgres://user:pass@host:5432/app"
)

// Defaults of the platforms, used when a file leaves the setting out.
const (
	flyDefaultKillSignal      = "SIGINT"
	flyDefaultKillTimeout     = 5 * time.Second
	composeDefaultStopSignal  = "SIGTERM"
	composeDefaultGracePeriod = 10 * time.Second
)

// role is what a command does, named as its /readyz names it (internal/admin
// roles), plus the relay's one-shot migrate. The relay is the publisher
// binary, with its own settings (config.LoadRelay).
type role int

const (
	unknownRole   role = iota
	publisherRole      // publisher serve
	workerRole         // worker [run]
	relayRole          // publisher relay
	migrateRole        // publisher relay migrate: one-shot, no broker, no endpoints
)

// longRunning are the roles that run until stopped: they drain on a signal,
// serve /readyz and need a health check.
var longRunning = []role{publisherRole, workerRole, relayRole}

func (b role) String() string {
	switch b {
	case publisherRole:
		return "publisher"
	case workerRole:
		return "worker"
	case relayRole:
		return "relay"
	case migrateRole:
		return "relay migrate"
	default:
		return "unknown"
	}
}

// binary is the path in the image of the binary that runs b.
func (b role) binary() string {
	if b == workerRole {
		return workerCmds[0][0]
	}
	return publisherCmd[0]
}

// oneShot reports whether b exits when done, so it has no health check, no
// endpoints and needs no broker.
func (b role) oneShot() bool { return b == migrateRole }

func classify(cmd []string) role {
	switch {
	case slices.Equal(cmd, publisherCmd):
		return publisherRole
	case slices.ContainsFunc(workerCmds, func(c []string) bool { return slices.Equal(c, cmd) }):
		return workerRole
	case slices.Equal(cmd, relayCmd):
		return relayRole
	case slices.Equal(cmd, migrateCmd):
		return migrateRole
	default:
		return unknownRole
	}
}

func allowedCommands() string {
	cmds := []string{strings.Join(publisherCmd, " ")}
	for _, c := range workerCmds {
		cmds = append(cmds, strings.Join(c, " "))
	}
	cmds = append(cmds, strings.Join(relayCmd, " "), strings.Join(migrateCmd, " "))
	return `"` + strings.Join(cmds, `", "`) + `"`
}

// ---- internal/config ----

// envVar is one environment variable a binary reads.
type envVar struct {
	Default    string
	HasDefault bool
}

// readBy lists the variables each role reads and their defaults, from
// the one source internal/config takes them from (config.Settings: what
// loading an empty environment yields). A variable with two defaults
// (PUBLISH_TIMEOUT) is listed with the first, `publisher serve`'s. Settings
// lists the relay's own variables (relayOnly) under the publisher binary;
// `publisher serve` does not read them, the relay reads them and all of the
// publisher's.
var readBy = func() map[role]map[string]envVar {
	out := map[role]map[string]envVar{publisherRole: {}, workerRole: {}, relayRole: {}, migrateRole: {}}
	for _, s := range config.Settings() {
		v := envVar{HasDefault: len(s.Defaults) > 0}
		if v.HasDefault {
			v.Default = s.Defaults[0]
		}
		if s.Binary != config.BinaryPublisher {
			out[workerRole][s.Var] = v
			continue
		}
		out[relayRole][s.Var] = v
		out[migrateRole][s.Var] = v
		if !slices.Contains(relayOnly, s.Var) {
			out[publisherRole][s.Var] = v
		}
	}
	return out
}()

// relayOnly are the variables of config.Relay's own fields (DATABASE_URL,
// OUTBOX_*), not those of the Publisher settings it embeds.
var relayOnly = func() []string {
	var names []string
	t := reflect.TypeFor[config.Relay]()
	for i := range t.NumField() {
		if f := t.Field(i); !f.Anonymous && f.Tag.Get("env") != "" {
			names = append(names, f.Tag.Get("env"))
		}
	}
	return names
}()

// setting is the value binary b sees for name in environ: the given value,
// else the default from internal/config.
func setting(b role, environ map[string]string, name string) string {
	if v, ok := environ[name]; ok {
		return v
	}
	return readBy[b][name].Default
}

func load(b role, environ map[string]string) error {
	switch b {
	case publisherRole:
		_, err := config.LoadPublisher(environ)
		return err
	case workerRole:
		_, err := config.LoadWorker(environ)
		return err
	case relayRole, migrateRole:
		_, err := config.LoadRelay(environ)
		return err
	default:
		return fmt.Errorf("no loader for %v", b)
	}
}

// ---- fly.toml ----

type flyFile struct {
	App         string `toml:"app"`
	KillSignal  string `toml:"kill_signal"`
	KillTimeout any    `toml:"kill_timeout"` // seconds, or a duration string like "30s"
	Build       struct {
		Dockerfile string `toml:"dockerfile"`
		Image      string `toml:"image"`
	} `toml:"build"`
	Env         map[string]any    `toml:"env"`
	Processes   map[string]string `toml:"processes"`
	HTTPService *flyHTTPService   `toml:"http_service"`
	Services    []flyService      `toml:"services"`
	Checks      map[string]struct {
		Processes []string `toml:"processes"`
		Type      string   `toml:"type"`
		Port      int      `toml:"port"`
		Path      string   `toml:"path"`
	} `toml:"checks"`
	Metrics *struct {
		Port int    `toml:"port"`
		Path string `toml:"path"`
	} `toml:"metrics"`
}

type flyHTTPService struct {
	Processes    []string `toml:"processes"`
	InternalPort int      `toml:"internal_port"`
	ForceHTTPS   bool     `toml:"force_https"`
	Concurrency  *struct {
		Type      string `toml:"type"`
		SoftLimit int    `toml:"soft_limit"`
		HardLimit int    `toml:"hard_limit"`
	} `toml:"concurrency"`
	Checks []struct {
		Method string `toml:"method"`
		Path   string `toml:"path"`
	} `toml:"checks"`
}

type flyService struct {
	Processes    []string `toml:"processes"`
	InternalPort int      `toml:"internal_port"`
}

func (f flyFile) env() map[string]string {
	m := make(map[string]string, len(f.Env))
	for k, v := range f.Env {
		m[k] = fmt.Sprint(v)
	}
	return m
}

// machineEnv is what a Machine of the app sees: [env], the AMQP_URL and
// DATABASE_URL secrets and FLY_APP_NAME, which Fly sets.
func (f flyFile) machineEnv() map[string]string {
	m := f.env()
	m["FLY_APP_NAME"] = f.App
	if _, ok := m["AMQP_URL"]; !ok {
		m["AMQP_URL"] = flySecretAMQPURL
	}
	if _, ok := m["DATABASE_URL"]; !ok {
		m["DATABASE_URL"] = flySecretDatabaseURL
	}
	return m
}

func (f flyFile) killTimeout() (time.Duration, error) {
	switch v := f.KillTimeout.(type) {
	case nil:
		return flyDefaultKillTimeout, nil
	case int64:
		return time.Duration(v) * time.Second, nil
	case string:
		return time.ParseDuration(v)
	default:
		return 0, fmt.Errorf("kill_timeout = %v: use whole seconds (30) or a duration string (\"30s\")", v)
	}
}

// groups returns the process groups running b.
func (f flyFile) groups(b role) []string {
	var names []string
	for name, cmd := range f.Processes {
		if classify(strings.Fields(cmd)) == b {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// ---- docker-compose.yml ----

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image           string      `yaml:"image"`
	Build           built       `yaml:"build"`
	Command         words       `yaml:"command"`
	Environment     environment `yaml:"environment"`
	Ports           ports       `yaml:"ports"`
	DependsOn       dependsOn   `yaml:"depends_on"`
	StopSignal      string      `yaml:"stop_signal"`
	StopGracePeriod string      `yaml:"stop_grace_period"`
	Restart         string      `yaml:"restart"`
	Volumes         mounts      `yaml:"volumes"`
	Healthcheck     *struct {
		Test    words `yaml:"test"`
		Disable bool  `yaml:"disable"`
	} `yaml:"healthcheck"`
}

// built records whether a service has `build:`, in either compose form.
type built bool

func (b *built) UnmarshalYAML(n *yaml.Node) error {
	*b = n.Tag != "!!null"
	return nil
}

// words is a command in either compose form: a string or a list.
type words []string

func (w *words) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*w = strings.Fields(n.Value)
		return nil
	}
	var s []string
	err := n.Decode(&s)
	*w = s
	return err
}

// environment is a service's environment in either compose form: a mapping
// or a list of NAME=value. A name without a value passes the host's value
// through; it is in Names but not in Set.
type environment struct {
	Set   map[string]string
	Names []string
}

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	e.Set = map[string]string{}
	add := func(name, value string, set bool) {
		e.Names = append(e.Names, name)
		if set {
			e.Set[name] = value
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			add(k.Value, v.Value, v.Tag != "!!null")
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			name, value, set := strings.Cut(item.Value, "=")
			add(name, value, set)
		}
	default:
		return fmt.Errorf("line %d: environment must be a mapping or a list", n.Line)
	}
	return nil
}

// ports are the ports a service publishes, from the short syntax
// ("8080:8080", "127.0.0.1:8080:8080/tcp") or the long one (target: 8080,
// host_ip: 127.0.0.1).
type ports []portMapping

// portMapping is one published port. HostIP is "" when the port is
// published on every interface of the host.
type portMapping struct {
	Spec   string // as written, for messages
	HostIP string
	Target string // the container port
}

func (p *ports) UnmarshalYAML(n *yaml.Node) error {
	for _, item := range n.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			s, _, _ := strings.Cut(item.Value, "/")
			m := portMapping{Spec: item.Value, Target: s[strings.LastIndex(s, ":")+1:]}
			if host := s[:max(strings.LastIndex(s, ":"), 0)]; strings.Contains(host, ":") {
				m.HostIP = strings.Trim(host[:strings.LastIndex(host, ":")], "[]")
			}
			*p = append(*p, m)
		case yaml.MappingNode:
			var long struct {
				Target string `yaml:"target"`
				HostIP string `yaml:"host_ip"`
			}
			if err := item.Decode(&long); err != nil {
				return err
			}
			*p = append(*p, portMapping{Spec: fmt.Sprintf("target: %s, host_ip: %q", long.Target, long.HostIP), HostIP: long.HostIP, Target: long.Target})
		}
	}
	return nil
}

// targets are the container ports.
func (p ports) targets() []string {
	out := make([]string, len(p))
	for i, m := range p {
		out[i] = m.Target
	}
	return out
}

// dependsOn maps each dependency to its condition, from either compose form.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, item := range n.Content {
			(*d)[item.Value] = "service_started"
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var dep struct {
				Condition string `yaml:"condition"`
			}
			if err := n.Content[i+1].Decode(&dep); err != nil {
				return err
			}
			(*d)[n.Content[i].Value] = cmp.Or(dep.Condition, "service_started")
		}
	default:
		return fmt.Errorf("line %d: depends_on must be a mapping or a list", n.Line)
	}
	return nil
}

// appServices are the services built from our Dockerfile, by name.
func (c composeFile) appServices() map[string]composeService {
	apps := map[string]composeService{}
	for name, s := range c.Services {
		if s.Build {
			apps[name] = s
		}
	}
	return apps
}

// ---- Dockerfile ----

type instruction struct {
	Stage int    // 0 before the first FROM, then 1, 2, …
	Op    string // upper case: FROM, RUN, COPY, …
	Args  string
}

// parseDockerfile joins continuation lines and drops comments; it does not
// expand variables.
func parseDockerfile(text string) []instruction {
	var (
		out   []instruction
		stage int
		cur   strings.Builder
	)
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		op, args, _ := strings.Cut(line, " ")
		op = strings.ToUpper(op)
		if op == "FROM" {
			stage++
		}
		out = append(out, instruction{Stage: stage, Op: op, Args: strings.TrimSpace(args)})
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return out
}

// shellWords splits s like a shell would, minus expansions: quotes group.
func shellWords(s string) []string {
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// goBuild is one `go build` in a RUN instruction.
type goBuild struct {
	Stage    int
	Out      string
	Packages []string
	Flags    []string
	Env      []string // NAME=value words before `go`
}

// goFlagsWithValue are go build flags that may take their value as the next word.
var goFlagsWithValue = []string{"-o", "-ldflags", "-gcflags", "-asmflags", "-tags", "-mod", "-p", "-buildmode", "-pgo", "-C", "-overlay", "-modfile"}

func goBuilds(ins []instruction) []goBuild {
	var builds []goBuild
	for _, in := range ins {
		if in.Op != "RUN" {
			continue
		}
		words := shellWords(in.Args)
		var cmds [][]string
		start := 0
		for i, w := range words {
			if w == "&&" || w == ";" || w == "||" {
				cmds = append(cmds, words[start:i])
				start = i + 1
			}
		}
		cmds = append(cmds, words[start:])
		for _, cmd := range cmds {
			i := slices.Index(cmd, "go")
			if i < 0 || i+1 >= len(cmd) || cmd[i+1] != "build" {
				continue
			}
			b := goBuild{Stage: in.Stage}
			for _, w := range cmd[:i] {
				if strings.Contains(w, "=") && !strings.HasPrefix(w, "-") {
					b.Env = append(b.Env, w)
				}
			}
			args := cmd[i+2:]
			for j := 0; j < len(args); j++ {
				w := args[j]
				if !strings.HasPrefix(w, "-") {
					b.Packages = append(b.Packages, w)
					continue
				}
				flag, value, hasValue := strings.Cut(w, "=")
				if !hasValue && slices.Contains(goFlagsWithValue, flag) && j+1 < len(args) {
					j++
					value = args[j]
				}
				if flag == "-o" {
					b.Out = value
				}
				b.Flags = append(b.Flags, flag)
			}
			builds = append(builds, b)
		}
	}
	return builds
}

// finalStage returns the instructions of the last stage: the image that runs.
func finalStage(ins []instruction) []instruction {
	if len(ins) == 0 {
		return nil
	}
	last := ins[len(ins)-1].Stage
	var out []instruction
	for _, in := range ins {
		if in.Stage == last {
			out = append(out, in)
		}
	}
	return out
}

// copiedPaths lists the paths a COPY instruction creates in the image.
func copiedPaths(args string) []string {
	var words []string
	if strings.HasPrefix(args, "[") {
		if json.Unmarshal([]byte(args), &words) != nil {
			return nil
		}
	} else {
		for _, w := range shellWords(args) {
			if !strings.HasPrefix(w, "--") {
				words = append(words, w)
			}
		}
	}
	if len(words) < 2 {
		return nil
	}
	srcs, dest := words[:len(words)-1], words[len(words)-1]
	if len(srcs) == 1 && !strings.HasSuffix(dest, "/") {
		return []string{dest}
	}
	var paths []string
	for _, s := range srcs {
		paths = append(paths, strings.TrimSuffix(dest, "/")+"/"+filepath.Base(s))
	}
	return paths
}

// ---- setup ----

type bundle struct {
	fly flyFile
	// compose is docker-compose.yml as Docker runs it when nothing is
	// exported (the demo defaults); rawCompose is it as written.
	compose      composeFile
	rawCompose   composeFile
	dockerfile   []instruction
	dockerignore []string
}

func setup(t *testing.T) bundle {
	t.Helper()
	var b bundle

	if _, err := toml.DecodeFile(filepath.Join(root, "fly.toml"), &b.fly); err != nil {
		t.Fatalf("fly.toml does not parse into the shape this test expects: %v", err)
	}

	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &b.rawCompose); err != nil {
		t.Fatalf("docker-compose.yml does not parse into the shape this test expects: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if err := interpolateNode(&doc, map[string]string{}, map[*yaml.Node]bool{}); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if err := doc.Decode(&b.compose); err != nil {
		t.Fatalf("docker-compose.yml after interpolation: %v", err)
	}
	if len(b.compose.appServices()) == 0 {
		t.Fatal("docker-compose.yml: no service has `build:`; build publisher and worker services from the Dockerfile")
	}

	raw, err = os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	b.dockerfile = parseDockerfile(string(raw))

	raw, err = os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore is missing; add one so .git and bin/ stay out of the build context: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			b.dockerignore = append(b.dockerignore, line)
		}
	}
	return b
}

// ---- tests ----

// (a) Every variable the files set is one the command reads.
func TestEnvNamesAreRead(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for name := range b.fly.Env {
		if !slices.ContainsFunc(longRunning, func(r role) bool { _, ok := readBy[r][name]; return ok }) {
			t.Errorf("fly.toml [env] sets %s, which no command reads; fix the name or remove it (internal/config reads %s)",
				name, known(longRunning...))
		}
	}
	for svc, s := range b.compose.appServices() {
		bin := classify(s.Command)
		if bin == unknownRole {
			continue // TestCommands reports it
		}
		for _, name := range s.Environment.Names {
			if _, ok := readBy[bin][name]; !ok {
				t.Errorf("docker-compose.yml service %q sets %s, which the %v does not read; fix the name or remove it (it reads %s)",
					svc, name, bin, known(bin))
			}
		}
	}
}

func known(bins ...role) string {
	var names []string
	for _, b := range bins {
		for name := range readBy[b] {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// (b) The broker URL carries the password: it must be a Fly secret.
func TestFlyAMQPURLIsSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)

	if _, ok := b.fly.Env["AMQP_URL"]; ok {
		t.Error("fly.toml [env] sets AMQP_URL, which holds the broker password; remove it and run `fly secrets set AMQP_URL=amqps://user:pass@host/vhost`")
	}
	for name, v := range b.fly.Env {
		if s, ok := v.(string); ok && (strings.HasPrefix(s, "amqp://") || strings.HasPrefix(s, "amqps://")) {
			t.Errorf("fly.toml [env] %s holds an AMQP URL; URLs carry passwords, keep them in `fly secrets`", name)
		}
	}
}

// (c) The files run only commands the image has, and the Dockerfile builds
// exactly those binaries, to those paths, into the image that runs.
func TestCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)

	if len(b.fly.Processes) == 0 {
		t.Errorf("fly.toml has no [processes]; add publisher = %q, worker = %q and relay = %q",
			strings.Join(publisherCmd, " "), strings.Join(workerCmds[0], " "), strings.Join(relayCmd, " "))
	}
	for name, cmd := range b.fly.Processes {
		switch classify(strings.Fields(cmd)) {
		case unknownRole:
			t.Errorf("fly.toml [processes] %s = %q: the image runs only %s; fix the command", name, cmd, allowedCommands())
		case migrateRole:
			t.Errorf("fly.toml [processes] %s = %q is a one-shot: its Machines would exit and be restarted; remove the group and run it once with fly ssh console -C %q",
				name, cmd, strings.Join(migrateCmd, " "))
		}
	}
	for _, bin := range longRunning {
		if len(b.fly.groups(bin)) == 0 {
			t.Errorf("fly.toml [processes] has no group running the %v; add one", bin)
		}
	}
	if b.fly.Build.Image == "" && b.fly.Build.Dockerfile != "Dockerfile" {
		t.Errorf("fly.toml [build] dockerfile = %q; set it to \"Dockerfile\" so Fly builds the image this test checks", b.fly.Build.Dockerfile)
	}

	seen := map[role]bool{}
	for name, s := range b.compose.appServices() {
		bin := classify(s.Command)
		seen[bin] = true
		if bin == unknownRole {
			t.Errorf("docker-compose.yml service %q: command %q; the image runs only %s; set `command:` to one of them",
				name, strings.Join(s.Command, " "), allowedCommands())
		}
	}
	for _, bin := range []role{publisherRole, workerRole, relayRole, migrateRole} {
		if !seen[bin] {
			t.Errorf("docker-compose.yml has no service built from the Dockerfile that runs the %v; add one", bin)
		}
	}

	checkDockerfile(t, b.dockerfile)
	checkDockerignore(t, b.dockerignore)
}

func checkDockerfile(t *testing.T, ins []instruction) {
	final := finalStage(ins)
	if len(final) == 0 {
		t.Fatal("Dockerfile has no FROM; build the binaries in a golang stage and copy them into a runtime stage")
	}

	// Built: exactly one `go build -o <path> <package>` per binary, static and
	// reproducible.
	built := map[string]string{}
	for _, gb := range goBuilds(ins) {
		if gb.Stage == final[0].Stage {
			t.Errorf("Dockerfile runs `go build` in the final stage; build in a golang stage and COPY --from it, so the image carries no toolchain")
		}
		if gb.Out == "" || len(gb.Packages) != 1 {
			t.Errorf("Dockerfile: `go build` with output %q and packages %q; build one package per command: go build -o /app/<name> ./cmd/<name>", gb.Out, gb.Packages)
			continue
		}
		if prev, ok := built[gb.Out]; ok {
			t.Errorf("Dockerfile builds %s twice (%s and %s); build it once", gb.Out, prev, gb.Packages[0])
		}
		built[gb.Out] = filepath.ToSlash(filepath.Clean(gb.Packages[0]))
		if !strings.HasPrefix(built[gb.Out], ".") {
			built[gb.Out] = "./" + built[gb.Out]
		}
		if !slices.Contains(gb.Flags, "-trimpath") {
			t.Errorf("Dockerfile: `go build -o %s` lacks -trimpath; add it so builds do not embed the builder's paths", gb.Out)
		}
		if !slices.Contains(gb.Env, "CGO_ENABLED=0") && !stageSets(ins, gb.Stage, "CGO_ENABLED=0") {
			t.Errorf("Dockerfile: `go build -o %s` runs without CGO_ENABLED=0; set `ENV CGO_ENABLED=0` in the build stage, the runtime image has no libc", gb.Out)
		}
	}
	for path, pkg := range binaries {
		if got, ok := built[path]; !ok {
			t.Errorf("Dockerfile does not build %s; add `go build -trimpath -ldflags=\"-s -w\" -o %s %s`", path, path, pkg)
		} else if got != pkg {
			t.Errorf("Dockerfile builds %s from %s; build it from %s", path, got, pkg)
		}
	}
	for path, pkg := range built {
		if _, ok := binaries[path]; !ok {
			t.Errorf("Dockerfile builds %s (from %s), which no deployment file runs; remove it or update deploy_test.go and the files together", path, pkg)
		}
	}

	// Shipped: the runtime stage holds both binaries and runs them unprivileged,
	// with a CMD that a process command can replace.
	var copied, users []string
	var cmd string
	for _, in := range final {
		switch in.Op {
		case "COPY":
			copied = append(copied, copiedPaths(in.Args)...)
		case "USER":
			users = append(users, in.Args)
		case "ENTRYPOINT":
			t.Errorf("Dockerfile final stage sets ENTRYPOINT %s; remove it and use CMD, or the compose and fly commands are appended to it as arguments instead of replacing it", in.Args)
		case "CMD":
			cmd = in.Args
		}
	}
	for path := range binaries {
		if !slices.Contains(copied, path) {
			t.Errorf("Dockerfile final stage does not COPY %s into the image (it copies %q); add it: COPY --from=build /app/publisher /app/worker /app/", path, copied)
		}
	}
	if len(users) == 0 || slices.Contains([]string{"root", "0", "0:0"}, users[len(users)-1]) {
		t.Errorf("Dockerfile final stage runs as %q; add `USER nonroot` (distroless) or another unprivileged user", users)
	}
	var argv []string
	if err := json.Unmarshal([]byte(cmd), &argv); err != nil {
		t.Errorf("Dockerfile CMD %q is not in exec form; write CMD [\"/app/worker\"], the runtime image has no shell to run the shell form", cmd)
	} else if classify(argv) == unknownRole {
		t.Errorf("Dockerfile CMD %q; make it one of %s", argv, allowedCommands())
	}
}

// stageSets reports whether an ENV or ARG of stage sets assignment (NAME=value).
func stageSets(ins []instruction, stage int, assignment string) bool {
	for _, in := range ins {
		if in.Stage == stage && (in.Op == "ENV" || in.Op == "ARG") && slices.Contains(shellWords(in.Args), assignment) {
			return true
		}
	}
	return false
}

func checkDockerignore(t *testing.T, patterns []string) {
	if !slices.Contains(patterns, ".git") {
		t.Error(".dockerignore does not exclude .git; add it, the history is large and must not reach the build context")
	}
	// Everything the Go build needs must stay in the context.
	needed := []string{"go.mod", "go.sum"}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && hasGoFiles(filepath.Join(root, e.Name())) {
			needed = append(needed, e.Name())
		}
	}
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") {
			continue
		}
		for _, n := range needed {
			if ok, _ := filepath.Match(strings.TrimPrefix(strings.TrimSuffix(p, "/"), "/"), n); ok {
				t.Errorf(".dockerignore pattern %q excludes %s, which `go build` needs; remove the pattern", p, n)
			}
		}
	}
}

// hasGoFiles reports whether dir or a directory below holds non-test Go files.
func hasGoFiles(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found
}

// (d) The publisher is reached on the port it listens on.
func TestPublisherPort(t *testing.T) {
	t.Parallel()
	b := setup(t)

	defaultPort := port(t, readBy[publisherRole]["PUBLISHER_ADDR"].Default)

	// The Dockerfile documents the default.
	var exposed []string
	for _, in := range finalStage(b.dockerfile) {
		if in.Op == "EXPOSE" {
			for _, p := range strings.Fields(in.Args) {
				p, _, _ = strings.Cut(p, "/")
				exposed = append(exposed, p)
			}
		}
	}
	if !slices.Contains(exposed, defaultPort) {
		t.Errorf("Dockerfile EXPOSE %q; expose %s, the port of PUBLISHER_ADDR's default in internal/config", exposed, defaultPort)
	}

	flyPort := port(t, setting(publisherRole, b.fly.env(), "PUBLISHER_ADDR"))
	if b.fly.HTTPService == nil {
		t.Fatal("fly.toml has no [http_service]; add one for the publisher process group")
	}
	if got := strconv.Itoa(b.fly.HTTPService.InternalPort); got != flyPort {
		t.Errorf("fly.toml [http_service] internal_port = %s, but the publisher listens on %s (PUBLISHER_ADDR); set internal_port = %s", got, flyPort, flyPort)
	}

	for name, s := range b.compose.appServices() {
		if classify(s.Command) != publisherRole {
			continue
		}
		want := port(t, setting(publisherRole, s.Environment.Set, "PUBLISHER_ADDR"))
		if !slices.Contains(s.Ports.targets(), want) {
			t.Errorf("docker-compose.yml service %q publishes container ports %q, but the publisher listens on %s (PUBLISHER_ADDR); map it: ports: [\"127.0.0.1:%s:%s\"]",
				name, s.Ports.targets(), want, want, want)
		}
	}
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("PUBLISHER_ADDR %q is not host:port: %v", addr, err)
	}
	return p
}

// (e) The platform waits longer than the binaries drain before it kills them.
func TestShutdownFitsKillTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)

	if s := cmp.Or(b.fly.KillSignal, flyDefaultKillSignal); s != "SIGINT" && s != "SIGTERM" {
		t.Errorf("fly.toml kill_signal = %q; the binaries drain on SIGINT or SIGTERM only, use one of them", s)
	}
	kill, err := b.fly.killTimeout()
	if err != nil {
		t.Fatalf("fly.toml: %v", err)
	}
	for _, bin := range longRunning {
		drain, err := time.ParseDuration(setting(bin, b.fly.env(), "SHUTDOWN_TIMEOUT"))
		if err != nil {
			continue // TestEnvValuesValidate reports it
		}
		if kill <= drain {
			t.Errorf("fly.toml kill_timeout (%v) is not longer than the %v's SHUTDOWN_TIMEOUT (%v): Fly would kill it mid-drain; raise kill_timeout above %d or lower SHUTDOWN_TIMEOUT in [env]",
				kill, bin, drain, int(drain.Seconds()))
		}
	}

	for name, s := range b.compose.appServices() {
		bin := classify(s.Command)
		if bin == unknownRole || bin.oneShot() {
			continue
		}
		if sig := cmp.Or(s.StopSignal, composeDefaultStopSignal); sig != "SIGTERM" && sig != "SIGINT" {
			t.Errorf("docker-compose.yml service %q: stop_signal %s; the binaries drain on SIGTERM or SIGINT only, use SIGTERM", name, sig)
		}
		grace := composeDefaultGracePeriod
		if s.StopGracePeriod != "" {
			if grace, err = time.ParseDuration(s.StopGracePeriod); err != nil {
				t.Errorf("docker-compose.yml service %q: stop_grace_period %q is not a duration like 30s", name, s.StopGracePeriod)
				continue
			}
		}
		drain, err := time.ParseDuration(setting(bin, s.Environment.Set, "SHUTDOWN_TIMEOUT"))
		if err != nil {
			continue // TestEnvValuesValidate reports it
		}
		if grace <= drain {
			t.Errorf("docker-compose.yml service %q: stop_grace_period (%v) is not longer than SHUTDOWN_TIMEOUT (%v): Docker would SIGKILL it mid-drain; set stop_grace_period above %v",
				name, grace, drain, drain)
		}
	}
}

// (f) Only the publisher is on the internet.
func TestFlyHTTPServiceServesOnlyPublisher(t *testing.T) {
	t.Parallel()
	b := setup(t)

	want := b.fly.groups(publisherRole)
	if len(want) == 0 {
		t.Fatal("fly.toml [processes] has no group running the publisher, so nothing can serve [http_service]; add publisher = \"/app/publisher serve\"")
	}
	hs := b.fly.HTTPService
	if hs == nil {
		t.Fatalf("fly.toml has no [http_service]; add one with processes = %q", want)
	}
	got := slices.Sorted(slices.Values(hs.Processes))
	if len(got) == 0 || !slices.Equal(got, want) {
		t.Errorf("fly.toml [http_service] processes = %q; set it to %q, the groups running `%s` (an empty list would expose every group, workers included)",
			hs.Processes, want, strings.Join(publisherCmd, " "))
	}
	if !hs.ForceHTTPS {
		t.Error("fly.toml [http_service] force_https is not true; set it, events must not travel in clear text")
	}
	if len(hs.Checks) == 0 {
		t.Error("fly.toml has no [[http_service.checks]]; add one on path /healthz so Fly routes only to live publishers")
	}
	for _, c := range hs.Checks {
		if c.Path != "/healthz" && c.Path != "/readyz" {
			t.Errorf("fly.toml [[http_service.checks]] path = %q; the publisher serves /healthz and /readyz", c.Path)
		}
	}
	for _, s := range b.fly.Services {
		for _, p := range s.Processes {
			for _, r := range []role{workerRole, relayRole} {
				if slices.Contains(b.fly.groups(r), p) {
					t.Errorf("fly.toml [[services]] exposes process group %q, which runs the %v; it takes no traffic, remove it from processes", p, r)
				}
			}
		}
		if len(s.Processes) == 0 {
			t.Error("fly.toml [[services]] without processes applies to every group, workers included; list the publisher group")
		}
	}
}

// (g) The binaries start only once RabbitMQ answers.
func TestComposeWaitsForHealthyBroker(t *testing.T) {
	t.Parallel()
	b := setup(t)

	brokers := map[string]bool{}
	for name, s := range b.compose.appServices() {
		bin := classify(s.Command)
		if bin == unknownRole || bin.oneShot() {
			continue // relay migrate works on the database only
		}
		u, err := url.Parse(setting(bin, s.Environment.Set, "AMQP_URL"))
		if err != nil {
			continue // TestEnvValuesValidate reports it
		}
		broker := u.Hostname()
		bs, ok := b.compose.Services[broker]
		if !ok {
			t.Errorf("docker-compose.yml service %q connects to %q (AMQP_URL), which is not a service in the file; set AMQP_URL=amqp://${RABBITMQ_USER:-eventfleet}:${RABBITMQ_PASS:-eventfleet-demo}@rabbitmq:5672/", name, broker)
			continue
		}
		if cond, ok := s.DependsOn[broker]; !ok {
			t.Errorf("docker-compose.yml service %q does not depend on %s; add depends_on: {%s: {condition: service_healthy}}", name, broker, broker)
		} else if cond != "service_healthy" {
			t.Errorf("docker-compose.yml service %q: depends_on %s has condition %q; use `condition: service_healthy` so it starts after the broker answers", name, broker, cond)
		}
		if brokers[broker] {
			continue
		}
		brokers[broker] = true
		if bs.Healthcheck == nil || bs.Healthcheck.Disable || len(bs.Healthcheck.Test) == 0 || bs.Healthcheck.Test[0] == "NONE" {
			t.Errorf("docker-compose.yml service %q has no healthcheck, so service_healthy never holds; add test: [\"CMD\", \"rabbitmq-diagnostics\", \"-q\", \"ping\"]", broker)
		}
	}
}

// (h) The settings pass the binaries' own validation, so a typo such as
// SHUTDOWN_TIMEOUT=25 (no unit) fails here and not at deploy time.
func TestEnvValuesValidate(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, bin := range longRunning {
		if len(b.fly.groups(bin)) == 0 {
			continue
		}
		if err := load(bin, b.fly.machineEnv()); err != nil {
			t.Errorf("fly.toml [env] (with FLY_APP_NAME=%q, AMQP_URL and DATABASE_URL as secrets) fails the %v's config: %v; fix the value", b.fly.App, bin, err)
		}
	}
	for name, s := range b.compose.appServices() {
		bin := classify(s.Command)
		if bin == unknownRole {
			continue
		}
		if err := load(bin, s.Environment.Set); err != nil {
			t.Errorf("docker-compose.yml service %q environment fails the %v's config: %v; fix the value", name, bin, err)
		}
	}
}

// The Fly health check probes a path the publisher really serves. Skipped
// until cmd/publisher has code.
func TestFlyHealthCheckPathIsServed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.fly.HTTPService == nil || len(b.fly.HTTPService.Checks) == 0 {
		t.Skip("no [[http_service.checks]]; TestFlyHTTPServiceServesOnlyPublisher reports it")
	}
	if !hasGoFiles(filepath.Join(root, "cmd", "publisher")) {
		t.Skip("cmd/publisher has no code yet")
	}

	var sources []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "deploy" || d.Name() == "testdata") {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sources = append(sources, string(raw))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.fly.HTTPService.Checks {
		if !slices.ContainsFunc(sources, func(src string) bool { return strings.Contains(src, c.Path+`"`) }) {
			t.Errorf("fly.toml [[http_service.checks]] probes %s, but no Go source registers that path; point the check at a route the publisher serves", c.Path)
		}
	}
}

// Each compose worker service is its own app with its own queue. Without
// APP_NAME the worker falls back to "app", so two services that forget it
// would silently share events_app and split each other's events.
func TestComposeWorkersNameTheirApp(t *testing.T) {
	t.Parallel()
	b := setup(t)

	owner := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(b.compose.appServices())) {
		s := b.compose.Services[name]
		if classify(s.Command) != workerRole {
			continue
		}
		app := s.Environment.Set["APP_NAME"]
		if app == "" {
			t.Errorf("docker-compose.yml service %q runs a worker without APP_NAME, so it consumes events_app; set APP_NAME", name)
			continue
		}
		if other, ok := owner[app]; ok {
			t.Errorf("docker-compose.yml services %q and %q both set APP_NAME=%s and so share one queue; scale one service with deploy.replicas instead, or give each its own APP_NAME", other, name, app)
		}
		owner[app] = name
	}
}

// metricsPort is the port of METRICS_ADDR as binary b sees environ.
func metricsPort(b role, environ map[string]string) string {
	addr := setting(b, environ, "METRICS_ADDR")
	if addr == config.MetricsOff {
		return "off"
	}
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// Fly's checks and compose's healthchecks ask the binaries' /readyz, where
// the binaries serve it; Fly scrapes /metrics where they serve it.
func TestHealthChecksProbeTheEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	env := b.fly.machineEnv()
	// Groups without a service have no [[http_service.checks]]: they need a
	// machine check.
	unnoticed := map[role]string{workerRole: "a worker that stopped consuming", relayRole: "a relay that lost the broker or the database"}
	for _, r := range []role{workerRole, relayRole} {
		for _, g := range b.fly.groups(r) {
			port := metricsPort(r, env)
			ok := false
			for _, c := range b.fly.Checks {
				if slices.Contains(c.Processes, g) && c.Type == "http" && c.Path == "/readyz" && strconv.Itoa(c.Port) == port {
					ok = true
				}
			}
			if !ok {
				t.Errorf("fly.toml has no [checks.*] of type http on path /readyz, port %s (METRICS_ADDR), for process group %q; %s would go unnoticed", port, g, unnoticed[r])
			}
		}
	}
	if m := b.fly.Metrics; m == nil || m.Path != "/metrics" {
		t.Error(`fly.toml has no [metrics] with path = "/metrics"; Fly would not scrape the binaries' metrics`)
	} else {
		for _, bin := range longRunning {
			if port := metricsPort(bin, env); strconv.Itoa(m.Port) != port {
				t.Errorf("fly.toml [metrics] port = %d, but the %s serves /metrics on METRICS_ADDR port %s", m.Port, bin, port)
			}
		}
	}
	for name, s := range b.compose.appServices() {
		bin := classify(s.Command)
		if bin == unknownRole || bin.oneShot() {
			continue // TestComposeOneShotsExit covers relay migrate
		}
		hc := s.Healthcheck
		if hc == nil || hc.Disable || !slices.Equal(hc.Test, []string{"CMD", bin.binary(), "health"}) {
			t.Errorf(`docker-compose.yml service %q has no healthcheck test: ["CMD", "%s", "health"]; the image has no curl, the health subcommand asks /readyz`, name, bin.binary())
		}
		if metricsPort(bin, s.Environment.Set) == "off" {
			t.Errorf("docker-compose.yml service %q sets METRICS_ADDR=off, so its health check has nothing to ask", name)
		}
	}
}
