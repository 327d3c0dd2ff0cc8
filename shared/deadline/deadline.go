// Package deadline holds the rule the long-running functions (the
// reconciliation, System A's capture) use to stop before their Lambda
// deadline with time left to write what they have: their report, their
// checkpoint, their error.
package deadline

import "time"

// Bounds of DefaultReserve.
const (
	MinReserve = time.Second
	MaxReserve = 30 * time.Second
)

// DefaultReserve is the reserve for left time to the deadline: a tenth of
// it, within [MinReserve, MaxReserve].
func DefaultReserve(left time.Duration) time.Duration {
	return min(max(left/10, MinReserve), MaxReserve)
}

// Stop is when work should stop: reserve before the deadline, or
// DefaultReserve of the time left at now when reserve is zero.
func Stop(deadline, now time.Time, reserve time.Duration) time.Time {
	if reserve == 0 {
		reserve = DefaultReserve(deadline.Sub(now))
	}
	return deadline.Add(-reserve)
}
