package main

// Results of the commands that act on several items at once (topic
// create, alter, add-partitions, delete and describe; group describe,
// delete and reset-offsets; txn list, describe and producers; lag): one
// item failing does not stop the others, and the command exits 1 when any
// failed.

import (
	"fmt"

	"github.com/spf13/cobra"
)

// failures collects per-item errors of a command acting on several items.
type failures []error

// add records err and returns its text, for the item's own result.
func (f *failures) add(err error) string {
	*f = append(*f, err)
	return err.Error()
}

// err returns nil when nothing failed, the error itself when one item was
// asked for, and otherwise prints every error and returns a count.
func (f failures) err(cmd *cobra.Command, total int, what string) error {
	switch {
	case len(f) == 0:
		return nil
	case total <= 1:
		return f[0]
	}
	for _, e := range f[:len(f)-1] {
		fmt.Fprintf(cmd.ErrOrStderr(), "floe: %v\n", e)
	}
	return fmt.Errorf("%v\n%d of %d %s failed", f[len(f)-1], len(f), total, what)
}

// itemReport reports a command that acts on each item it is given and
// says, per item, what it did (topic create, alter, add-partitions and
// delete; group delete). With text output each item done prints its own
// line as it is reported; failures print nothing until finish. With JSON
// output nothing prints until finish writes the command's document, in
// which each item carries the error text fail returned.
type itemReport struct {
	cmd   *cobra.Command
	out   string // outputText or outputJSON
	what  string // the items, plural ("topics"), for the count of failures
	total int    // how many items were asked for
	fails failures
}

func newItemReport(cmd *cobra.Command, out, what string, total int) *itemReport {
	return &itemReport{cmd: cmd, out: out, what: what, total: total}
}

// ok reports an item done: with text output it prints format, a line.
func (r *itemReport) ok(format string, args ...any) {
	if r.out == outputText {
		fmt.Fprintf(r.cmd.OutOrStdout(), format+"\n", args...)
	}
}

// fail records an item's error and returns its text, for the item's JSON.
func (r *itemReport) fail(err error) string {
	return r.fails.add(err)
}

// finish writes doc with JSON output, then returns what failures.err makes
// of the failures: nil when there were none, else the error that exits 1.
func (r *itemReport) finish(doc any) error {
	if r.out == outputJSON {
		if err := writeJSON(r.cmd.OutOrStdout(), doc); err != nil {
			return err
		}
	}
	return r.fails.err(r.cmd, r.total, r.what)
}
