package brokertest

import (
	"os"
	"testing"
)

// ClusterTestsEnv turns on the tests that start a private three-node
// cluster (about 1.5 to 5 minutes each, three nodes on the machine's cores):
// `EVENTFLEET_CLUSTER_TESTS=1 go test -run Cluster ./internal/brokertest/ ./chaos/`.
// They are off by default until they are part of CI's run.
const ClusterTestsEnv = "EVENTFLEET_CLUSTER_TESTS"

// SkipUnlessClusterTests skips t unless ClusterTestsEnv is 1.
func SkipUnlessClusterTests(t testing.TB) {
	t.Helper()
	if os.Getenv(ClusterTestsEnv) != "1" {
		t.Skipf("cluster test: set %s=1 to run it (starts three private RabbitMQ nodes)", ClusterTestsEnv)
	}
}
