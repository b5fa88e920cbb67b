package main

// Results of the commands that act on several items at once (topic
// create, alter, add-partitions, delete and describe; group describe,
// delete and reset-offsets; lag): one item failing does not stop the
// others, and the command exits 1 when any failed.

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
