package bench

import (
	"os"
	"slices"
	"time"
)

// PageFaultLimit is what the machine charges for memory a process
// touches for the first time: a page fault, and under a hypervisor often
// an exit to the host that backs the page. A process whose heap grows
// (an agent just started, or taking on more partitions) pays it for every
// page, on top of the work it does with them; on some virtual machines it
// is ten times what it is on bare metal, and then a large part of a
// phase's CPU (docs/benchmarks.md).
type PageFaultLimit struct {
	PageBytes int `json:"page_bytes"`
	Pages     int `json:"pages"` // touched in each of the rounds
	// MicrosPerPage is the median of the rounds' mean cost of a first
	// write to a fresh page, in microseconds.
	MicrosPerPage float64 `json:"us_per_page"`
}

// SecondsPerGiB is the cost of faulting in 1 GiB at this rate.
func (l *PageFaultLimit) SecondsPerGiB() float64 {
	return l.MicrosPerPage * float64((1<<30)/l.PageBytes) / 1e6
}

// pageFaultRounds and pageFaultBytes size measurePageFaults: three rounds
// of 64 MiB take about half a second where a fault costs 10 µs.
const (
	pageFaultRounds = 3
	pageFaultBytes  = 64 << 20
)

// measurePageFaults times first writes to fresh anonymous memory, a page
// at a time, mapped for the measurement and unmapped after it. ok is false
// where the bench cannot map memory of its own (no mmap).
func measurePageFaults() (*PageFaultLimit, bool, error) {
	page := os.Getpagesize()
	per := make([]float64, 0, pageFaultRounds)
	for range pageFaultRounds {
		mem, ok, err := mapAnon(pageFaultBytes)
		if !ok || err != nil {
			return nil, ok, err
		}
		start := time.Now()
		for i := 0; i < len(mem); i += page {
			mem[i] = 1
		}
		d := time.Since(start)
		if err := unmapAnon(mem); err != nil {
			return nil, true, err
		}
		per = append(per, float64(d.Nanoseconds())/1e3/float64(len(mem)/page))
	}
	slices.Sort(per)
	return &PageFaultLimit{PageBytes: page, Pages: pageFaultBytes / page, MicrosPerPage: per[len(per)/2]}, true, nil
}
