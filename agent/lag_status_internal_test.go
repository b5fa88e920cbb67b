package agent

import (
	"testing"
	"time"

	"github.com/floe-io/floe/internal/lagapi"
)

// partitionStatus follows Burrow's evaluator, rule by rule and in its
// order, on windows of commits at chosen times.
func TestPartitionStatusFollowsBurrow(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	at := func(agoMs int64, offset, lag int64) lagapi.Sample {
		return lagapi.Sample{Timestamp: now.UnixMilli() - agoMs, Offset: offset, Lag: lag}
	}
	for _, tc := range []struct {
		name    string
		samples []lagapi.Sample
		lag     int64
		want    string
	}{
		{"no lag now", []lagapi.Sample{at(3000, 5, 5), at(2000, 5, 5)}, 0, statusOK},
		{"no commits", nil, 10, statusOK},
		// Stopped: silence (2500ms) longer than the window (1000ms), even
		// though the lag was 0 at an older commit (Burrow checks STOP
		// before the zero-lag rule).
		{"stopped after zero lag", []lagapi.Sample{at(3500, 10, 0), at(2500, 20, 5)}, 15, statusStop},
		// Caught up at its last offset moments ago: not STOP yet.
		{"stopped but caught up recently", []lagapi.Sample{at(3500, 10, 4), at(2500, 20, 0)}, 15, statusOK},
		{"caught up long ago", []lagapi.Sample{at(300_000, 10, 4), at(200_000, 20, 0)}, 15, statusStop},
		{"rewind", []lagapi.Sample{at(300, 50, 5), at(200, 40, 15), at(100, 45, 10)}, 10, statusRewind},
		{"rewind recovered", []lagapi.Sample{at(300, 50, 5), at(200, 40, 8), at(100, 55, 10)}, 10, statusWarn},
		{"lag was zero in the window", []lagapi.Sample{at(300, 10, 0), at(200, 10, 3), at(100, 10, 6)}, 6, statusOK},
		{"stalled", []lagapi.Sample{at(300, 10, 3), at(200, 10, 6), at(100, 10, 9)}, 9, statusStall},
		{"lag growing", []lagapi.Sample{at(300, 10, 3), at(200, 12, 6), at(100, 14, 9)}, 9, statusWarn},
		{"lag growing, one lag unknown", []lagapi.Sample{at(300, 10, 3), at(200, 12, -1), at(100, 14, 9)}, 9, statusWarn},
		{"lag shrinking somewhere", []lagapi.Sample{at(300, 10, 3), at(200, 12, 2), at(100, 14, 9)}, 9, statusOK},
	} {
		if got := partitionStatus(tc.samples, tc.lag, now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
