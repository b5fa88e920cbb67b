package bench

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/units"
)

// Phase is one step of the run, for progress displays: what it measures,
// how far it is, and toward what total.
type Phase struct {
	Name  string
	Unit  string // "bytes", "records", "requests" or "txns"
	Total int64  // 0: unknown (runs for a time instead)
	For   time.Duration
	Start time.Time
	done  atomic.Int64
}

// Add counts n more units done. It is safe on a nil Phase.
func (p *Phase) Add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

// Done is the units done so far.
func (p *Phase) Done() int64 { return p.done.Load() }

// Observer follows a run. Calls come from the run's goroutine; the
// Phase's counter moves on others, so an observer polls Done.
type Observer interface {
	// Begin announces a phase; End says it finished.
	Begin(p *Phase)
	End(p *Phase)
	// Logf reports what the run is doing between phases (restarting an
	// agent, waiting for a group).
	Logf(format string, args ...any)
}

type nopObserver struct{}

func (nopObserver) Begin(*Phase)        {}
func (nopObserver) End(*Phase)          {}
func (nopObserver) Logf(string, ...any) {}

// run begins a phase and returns it with the function that ends it.
func (r *runner) phase(name, unit string, total int64, d time.Duration) (*Phase, func()) {
	p := &Phase{Name: name, Unit: unit, Total: total, For: d, Start: time.Now()}
	r.obs.Begin(p)
	return p, func() { r.obs.End(p) }
}

// FormatProgress renders a phase on one line: a bar when the total or
// duration is known.
func FormatProgress(p *Phase) string {
	elapsed := time.Since(p.Start)
	done := p.Done()
	frac := -1.0
	switch {
	case p.Total > 0:
		frac = float64(done) / float64(p.Total)
	case p.For > 0:
		frac = elapsed.Seconds() / p.For.Seconds()
	}
	if p.Total > 0 && p.For > 0 {
		frac = max(frac, elapsed.Seconds()/p.For.Seconds())
	}
	amount := fmt.Sprintf("%d %s", done, p.Unit)
	rate := ""
	if p.Unit == "bytes" {
		amount = units.Bytes(done)
		if elapsed > 0 {
			rate = fmt.Sprintf("  %.1f MiB/s", float64(done)/(1<<20)/elapsed.Seconds())
		}
	} else if elapsed > 0 {
		rate = fmt.Sprintf("  %.0f/s", float64(done)/elapsed.Seconds())
	}
	if frac < 0 {
		return fmt.Sprintf("%-18s %s%s  %s", p.Name, amount, rate, elapsed.Round(time.Second))
	}
	frac = min(frac, 1)
	const width = 24
	filled := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < filled {
			bar[i] = '='
		}
	}
	return fmt.Sprintf("%-18s [%s] %3.0f%%  %s%s  %s", p.Name, bar, frac*100, amount, rate, elapsed.Round(time.Second))
}
