package bench

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
)

func TestMeasurePageFaults(t *testing.T) {
	l, ok, err := measurePageFaults()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("no anonymous mappings on this platform")
	}
	if l.PageBytes != os.Getpagesize() || l.Pages != pageFaultBytes/l.PageBytes {
		t.Errorf("measured %d pages of %d bytes, want %d of %d", l.Pages, l.PageBytes, pageFaultBytes/os.Getpagesize(), os.Getpagesize())
	}
	// A fault takes at least the write; no machine takes a second a page.
	if !(l.MicrosPerPage > 0 && l.MicrosPerPage < 1e6) || math.IsNaN(l.SecondsPerGiB()) {
		t.Errorf("%v µs a page", l.MicrosPerPage)
	}
}

func TestPageFaultLimitInReport(t *testing.T) {
	rep := &Report{Limits: Limits{PageFault: &PageFaultLimit{PageBytes: 4096, Pages: 16384, MicrosPerPage: 10}}}
	if got := rep.Limits.PageFault.SecondsPerGiB(); math.Abs(got-2.62144) > 1e-9 {
		t.Errorf("10 µs a 4 KiB page is %v s per GiB, want 2.62144", got)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "first write to a fresh 4.0 KiB page") || !strings.Contains(b.String(), "10.00 µs a page") || !strings.Contains(b.String(), "(2.62 s per GiB)") {
		t.Errorf("report lacks the page fault line:\n%s", b.String())
	}
}
