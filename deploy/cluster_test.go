package deploy

import (
	"bufio"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/eventfleet/eventfleet/internal/brokertest"
)

// ---- docker-compose.cluster.yml and deploy/rabbitmq/cluster.conf ----

const (
	clusterCompose = "docker-compose.cluster.yml"
	clusterConf    = "deploy/rabbitmq/cluster.conf"
	// clusterConfTarget is where every node mounts clusterConf: the image
	// reads every file of conf.d after its own 10-defaults.conf.
	clusterConfTarget = "/etc/rabbitmq/conf.d/20-cluster.conf"
	// clusterAdvanced holds the settings rabbitmq.conf cannot set; the
	// image reads clusterAdvancedTarget.
	clusterAdvanced       = "deploy/rabbitmq/advanced.config"
	clusterAdvancedTarget = "/etc/rabbitmq/advanced.config"
)

type clusterFile struct {
	Services map[string]clusterService `yaml:"services"`
}

type clusterService struct {
	composeService `yaml:",inline"`
	Hostname       string `yaml:"hostname"`
}

// clusterSetup is the compose file as written (raw) and as Docker runs it
// when nothing is exported (the demo defaults), its broker nodes by
// service name, and the settings of cluster.conf.
type clusterSetup struct {
	raw, file clusterFile
	nodes     map[string]clusterService
	conf      map[string]string
}

func newClusterSetup(t *testing.T) clusterSetup {
	t.Helper()
	var s clusterSetup
	raw, err := os.ReadFile(filepath.Join(root, clusterCompose))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &s.raw); err != nil {
		t.Fatalf("%s does not parse into the shape this test expects: %v", clusterCompose, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if err := interpolateNode(&doc, map[string]string{}, map[*yaml.Node]bool{}); err != nil {
		t.Fatalf("%s: %v", clusterCompose, err)
	}
	if err := doc.Decode(&s.file); err != nil {
		t.Fatalf("%s after interpolation: %v", clusterCompose, err)
	}
	// A node is a RabbitMQ service that runs the server (the image's own
	// command), not a one-shot such as the policy's.
	s.nodes = map[string]clusterService{}
	for name, svc := range s.file.Services {
		if strings.HasPrefix(svc.Image, "rabbitmq:") && len(svc.Command) == 0 {
			s.nodes[name] = svc
		}
	}
	s.conf = readRabbitConf(t, filepath.Join(root, clusterConf))
	return s
}

// readRabbitConf reads a rabbitmq.conf (sysctl format: key = value, #
// comments). A key given twice is an error: RabbitMQ would take the last.
func readRabbitConf(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conf := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			t.Fatalf("%s:%d: %q is not key = value", path, line, text)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, dup := conf[k]; dup {
			t.Errorf("%s:%d: %s set twice", path, line, k)
		}
		conf[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return conf
}

// nodeName is the RabbitMQ node name of a service: rabbit@<hostname>.
func nodeName(svc clusterService) string { return "rabbit@" + svc.Hostname }

// Three nodes, each with its own host name and data volume, all reading
// cluster.conf.
func TestCluster_ThreeNodes(t *testing.T) {
	t.Parallel()
	s := newClusterSetup(t)
	if len(s.nodes) != 3 {
		t.Fatalf("%s has %d RabbitMQ nodes (%v), want 3: a cluster of two pauses both halves of any split under pause_minority",
			clusterCompose, len(s.nodes), slices.Sorted(maps.Keys(s.nodes)))
	}
	hosts, volumes := map[string]string{}, map[string]string{}
	for name, n := range s.nodes {
		if n.Hostname == "" {
			t.Errorf("%s: node %q has no hostname: its node name would be the container id's, which changes with every container", clusterCompose, name)
		}
		if other, dup := hosts[n.Hostname]; dup {
			t.Errorf("%s: nodes %q and %q share hostname %q", clusterCompose, name, other, n.Hostname)
		}
		hosts[n.Hostname] = name
		if !strings.HasPrefix(n.Image, "rabbitmq:3.13") {
			t.Errorf("%s: node %q runs %q; docker-compose.yml runs rabbitmq:3.13-management, keep them alike", clusterCompose, name, n.Image)
		}
		var conf, advanced, data bool
		for _, m := range n.Volumes {
			switch m.Target {
			case clusterConfTarget:
				conf = filepath.Clean(m.Source) == filepath.Clean("./"+clusterConf)
			case clusterAdvancedTarget:
				advanced = filepath.Clean(m.Source) == filepath.Clean("./"+clusterAdvanced)
			case "/var/lib/rabbitmq":
				data = true
				if other, dup := volumes[m.Source]; dup {
					t.Errorf("%s: nodes %q and %q share the data volume %q", clusterCompose, name, other, m.Source)
				}
				volumes[m.Source] = name
			}
		}
		if !conf {
			t.Errorf("%s: node %q does not mount ./%s at %s", clusterCompose, name, clusterConf, clusterConfTarget)
		}
		if !advanced {
			t.Errorf("%s: node %q does not mount ./%s at %s", clusterCompose, name, clusterAdvanced, clusterAdvancedTarget)
		}
		if !data {
			t.Errorf("%s: node %q keeps /var/lib/rabbitmq in the container: a restart would make it a new node", clusterCompose, name)
		}
		if n.Healthcheck == nil || len(n.Healthcheck.Test) == 0 {
			t.Errorf("%s: node %q has no healthcheck; the fleet waits for service_healthy", clusterCompose, name)
		}
	}
}

// One Erlang cookie, taken from the environment; a node with another one
// could not join.
func TestCluster_SameCookieFromTheEnvironment(t *testing.T) {
	t.Parallel()
	s := newClusterSetup(t)
	cookies := map[string]bool{}
	for name, n := range s.nodes {
		v, ok := n.Environment.Set["RABBITMQ_ERLANG_COOKIE"]
		if !ok || v == "" {
			t.Errorf("%s: node %q sets no RABBITMQ_ERLANG_COOKIE", clusterCompose, name)
			continue
		}
		cookies[v] = true
		if raw := s.raw.Services[name].Environment.Set["RABBITMQ_ERLANG_COOKIE"]; !strings.HasPrefix(raw, "${RABBITMQ_ERLANG_COOKIE") {
			t.Errorf("%s: node %q: RABBITMQ_ERLANG_COOKIE is %q; take it from the environment, ${RABBITMQ_ERLANG_COOKIE:-…}", clusterCompose, name, raw)
		}
	}
	if len(cookies) > 1 {
		t.Errorf("%s: the nodes have %d different Erlang cookies; they must share one", clusterCompose, len(cookies))
	}
	for name, svc := range s.file.Services {
		for _, p := range svc.Ports {
			if p.Target == "25672" || p.Target == "4369" {
				t.Errorf("%s: service %q publishes %s, an Erlang distribution port: the cookie is all that guards it", clusterCompose, name, p.Spec)
			}
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s: service %q publishes %s on every interface; publish on 127.0.0.1 only, this is a demo", clusterCompose, name, p.Spec)
			}
		}
	}
}

// Peer discovery lists exactly the three nodes, and the recommended
// partition settings are in force (docs/cluster.md).
func TestCluster_PeerDiscoveryAndPartitionSettings(t *testing.T) {
	t.Parallel()
	s := newClusterSetup(t)
	if got := s.conf["cluster_formation.peer_discovery_backend"]; got != "classic_config" && got != "rabbit_peer_discovery_classic_config" {
		t.Errorf("%s: cluster_formation.peer_discovery_backend = %q, want classic_config", clusterConf, got)
	}
	var listed []string
	for k, v := range s.conf {
		if strings.HasPrefix(k, "cluster_formation.classic_config.nodes.") {
			listed = append(listed, v)
		}
	}
	var want []string
	for _, n := range s.nodes {
		want = append(want, nodeName(n))
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("%s lists nodes %v; the compose file's nodes are %v", clusterConf, listed, want)
	}
	for k, want := range map[string]string{
		"cluster_partition_handling": "pause_minority",
		"net_ticktime":               "10",
		"max_message_size":           "16777216",
	} {
		if got := s.conf[k]; got != want {
			t.Errorf("%s: %s = %q, want %q (docs/cluster.md)", clusterConf, k, got, want)
		}
	}
}

// Every eventfleet service that uses the broker lists all three nodes in
// AMQP_URL and waits for all three; every one passes its binary's
// validation. The fleet is docker-compose.yml's: publisher, workers, relay.
func TestCluster_FleetUsesEveryNode(t *testing.T) {
	t.Parallel()
	s := newClusterSetup(t)
	var hosts []string
	for _, n := range s.nodes {
		hosts = append(hosts, n.Hostname)
	}
	slices.Sort(hosts)
	roles := map[role]bool{}
	for name, svc := range s.file.Services {
		if !svc.Build {
			continue
		}
		bin := classify(svc.Command)
		if bin == unknownRole {
			t.Errorf("%s service %q: command %q; the image runs only %s", clusterCompose, name, svc.Command, allowedCommands())
			continue
		}
		roles[bin] = true
		if err := load(bin, svc.Environment.Set); err != nil {
			t.Errorf("%s service %q environment fails the %v's config: %v", clusterCompose, name, bin, err)
		}
		if bin.oneShot() {
			continue // relay migrate works on the database only
		}
		var got []string
		for _, u := range splitAMQPURLs(svc.Environment.Set["AMQP_URL"]) {
			pu, err := url.Parse(u)
			if err != nil {
				t.Errorf("%s service %q: AMQP_URL element %q: %v", clusterCompose, name, u, err)
				continue
			}
			got = append(got, pu.Hostname())
		}
		slices.Sort(got)
		if !slices.Equal(got, hosts) {
			t.Errorf("%s service %q: AMQP_URL lists hosts %v, want every node %v", clusterCompose, name, got, hosts)
		}
		for node := range s.nodes {
			if cond := svc.DependsOn[node]; cond != "service_healthy" {
				t.Errorf("%s service %q: depends_on %s is %q, want service_healthy", clusterCompose, name, node, cond)
			}
		}
	}
	for _, r := range []role{publisherRole, workerRole, relayRole} {
		if !roles[r] {
			t.Errorf("%s runs no %v; mirror docker-compose.yml's fleet", clusterCompose, r)
		}
	}
}

// splitAMQPURLs cuts a list as the binaries do: only a comma followed by a
// scheme separates two URLs.
func splitAMQPURLs(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ',' && (strings.HasPrefix(s[i+1:], "amqp://") || strings.HasPrefix(s[i+1:], "amqps://")) {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// The retry path's resend delay after a leader's death: the same value the
// chaos suite's private clusters run with (internal/brokertest).
func TestCluster_DeadLetterConfirmTimeout(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root, clusterAdvanced))
	if err != nil {
		t.Fatal(err)
	}
	var terms []string
	for _, line := range strings.Split(string(b), "\n") {
		if line, _, _ = strings.Cut(line, "%"); strings.TrimSpace(line) != "" {
			terms = append(terms, strings.Join(strings.Fields(line), ""))
		}
	}
	got := strings.Join(terms, "")
	want := "[{rabbit,[{dead_letter_worker_publisher_confirm_timeout," + strconv.Itoa(brokertest.DeadLetterConfirmTimeoutMS) + "}]}]."
	if got != want {
		t.Errorf("%s is, without comments and spaces, %s; want %s", clusterAdvanced, got, want)
	}
}
