package retry_test

import (
	"fmt"

	"github.com/eventfleet/eventfleet/retry"
)

// The default schedule: five attempts, four waits, then the dead-letter queue.
func ExamplePolicy_Next() {
	p := retry.Policy{}.WithDefaults()
	for attempt := 1; ; attempt++ {
		delay, dead := p.Next(attempt)
		if dead {
			fmt.Printf("attempt %d failed: dead-letter\n", attempt)
			break
		}
		fmt.Printf("attempt %d failed: retry in %v\n", attempt, delay)
	}
	// Output:
	// attempt 1 failed: retry in 1s
	// attempt 2 failed: retry in 10s
	// attempt 3 failed: retry in 1m0s
	// attempt 4 failed: retry in 5m0s
	// attempt 5 failed: dead-letter
}
