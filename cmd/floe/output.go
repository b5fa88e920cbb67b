package main

// Output of the client commands: aligned tables for people, JSON for
// scripts (-o json), and a progress line on stderr for long work when
// stderr is a terminal (never otherwise, so logs and pipes stay clean).

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Output formats. "table" and "text" are the same human-readable format.
const (
	outputText = "text"
	outputJSON = "json"
)

func addOutputFlag(fs *pflag.FlagSet, p *string) {
	fs.StringVarP(p, "output", "o", "table", "output format: table (for people) or json (for scripts; see the field list above)")
}

// outputFormat validates -o/--output and returns outputText or outputJSON.
func outputFormat(cmd *cobra.Command, v string) (string, error) {
	switch v {
	case "", "table", "text":
		return outputText, nil
	case "json":
		return outputJSON, nil
	}
	return "", usageError(cmd, "-o/--output %q: use table or json", v)
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine writes v as one line of JSON (JSON Lines).
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(toAny(header)...)
	}
	return t
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// row writes one row; a nil *int64 prints as "-".
func (t *table) row(cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		switch v := c.(type) {
		case *int64:
			if v == nil {
				parts[i] = "-"
			} else {
				parts[i] = fmt.Sprint(*v)
			}
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func int64p(v int64) *int64 { return &v }

// progress redraws one line on stderr while long work runs: a bar when the
// total is known, a count and rate otherwise. It draws only when stderr is
// a terminal, and only once the work has taken a moment; finish clears the
// line. It owns one goroutine, stopped by finish.
type progress struct {
	w     io.Writer
	label string
	total int64
	n     atomic.Int64
	start time.Time
	stop  chan struct{}
	done  chan struct{}
}

func newProgress(cmd *cobra.Command, label string, total int64) *progress {
	p := &progress{w: cmd.ErrOrStderr(), label: label, total: total, start: time.Now()}
	if !isTerminal(p.w) {
		return p
	}
	p.stop = make(chan struct{})
	p.done = make(chan struct{})
	go p.run()
	return p
}

func (p *progress) add(n int64) { p.n.Add(n) }

func (p *progress) run() {
	defer close(p.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	drawn := false
	for {
		select {
		case <-p.stop:
			if drawn {
				fmt.Fprint(p.w, "\r\x1b[K")
			}
			return
		case <-t.C:
			if time.Since(p.start) < 500*time.Millisecond {
				continue
			}
			fmt.Fprint(p.w, "\r\x1b[K"+p.line())
			drawn = true
		}
	}
}

func (p *progress) line() string {
	n := p.n.Load()
	rate := float64(n) / time.Since(p.start).Seconds()
	if p.total <= 0 {
		return fmt.Sprintf("%s %d records (%.0f/s)", p.label, n, rate)
	}
	const width = 30
	frac := float64(n) / float64(p.total)
	frac = min(frac, 1)
	filled := int(frac * width)
	return fmt.Sprintf("%s [%s%s] %3.0f%%  %d/%d  (%.0f/s)", p.label,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, n, p.total, rate)
}

// finish stops drawing and clears the line. It is safe to call on a
// progress that never drew, and more than once.
func (p *progress) finish() {
	if p.stop == nil {
		return
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
