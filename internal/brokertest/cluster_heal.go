package brokertest

import "time"

// HealthyWithin waits up to timeout for the cluster to be whole, as
// WaitHealthy does, and returns "" when it is, or what is still missing,
// without failing the test: for a test that repairs the cluster itself when
// the broker does not.
func (c *Cluster) HealthyWithin(timeout time.Duration) (problem string) {
	deadline := time.Now().Add(timeout)
	for {
		if problem = c.unhealthy(); problem == "" || time.Now().After(deadline) {
			return problem
		}
		time.Sleep(500 * time.Millisecond)
	}
}
