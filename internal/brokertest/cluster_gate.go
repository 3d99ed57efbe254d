package brokertest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// ClusterTestsEnv chooses the tests that start a private three-node
// cluster (three nodes on the machine's cores, minutes each):
//
//	unset  the chaos suite's short cluster run (CI's, about 5 minutes)
//	1      that and the harness's own test (TestCluster_KillPausePartition)
//	0      none; -short also skips them all
const ClusterTestsEnv = "EVENTFLEET_CLUSTER_TESTS"

// SkipUnlessClusterTests skips t under -short or when ClusterTestsEnv is 0.
func SkipUnlessClusterTests(t testing.TB) {
	t.Helper()
	switch {
	case testing.Short():
		t.Skip("cluster test: skipped under -short (starts three private RabbitMQ nodes)")
	case os.Getenv(ClusterTestsEnv) == "0":
		t.Skipf("cluster test: %s=0", ClusterTestsEnv)
	}
}

// SkipUnlessAllClusterTests skips t unless ClusterTestsEnv is 1: for the
// cluster tests that CI's run leaves out, whose ground the chaos suite's
// short run covers too.
func SkipUnlessAllClusterTests(t testing.TB) {
	t.Helper()
	if os.Getenv(ClusterTestsEnv) != "1" {
		t.Skipf("cluster test: set %s=1 to run it (the chaos suite's cluster run covers the same ground)", ClusterTestsEnv)
	}
}

// clusterLock makes private clusters take turns across test processes:
// `go test ./...` runs packages at once, and two three-node clusters on two
// cores would slow each other's failure detection past what the tests
// allow. Released when t ends, after the cluster's nodes are gone.
func clusterLock(t testing.TB) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "eventfleet-cluster.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("cluster lock: %v", err)
	}
	began := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		t.Fatalf("cluster lock %s: %v", path, err)
	}
	if waited := time.Since(began); waited > time.Second {
		t.Logf("waited %v for another test process's cluster (%s)", waited.Round(100*time.Millisecond), path)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	})
}
