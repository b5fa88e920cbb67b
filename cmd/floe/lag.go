package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// lagSnapshot is what `floe lag -o json` prints, once or (with --watch)
// once per interval as one line.
type lagSnapshot struct {
	Time     string        `json:"time"`
	Groups   []groupReport `json:"groups"`
	TotalLag int64         `json:"total_lag"`
}

func newLagCmd() *cobra.Command {
	var (
		cf       clientFlags
		watch    bool
		interval time.Duration
		output   string
	)
	cmd := clientCommand(&cobra.Command{
		Use:   "lag [GROUP...]",
		Short: "Show consumer lag per group, topic and partition",
		Long: `Show how far consumer groups are behind: per partition the committed
offset, the end offset and the lag, with a total per group. Without GROUP,
every group, classic and consumer-protocol (KIP-848) alike. --watch
redraws it every --interval until Ctrl-C (in place on a terminal; one
snapshot after another otherwise).

` + lagRules + `

JSON output: {"time", "groups": [` + groupReportFields + `],
"total_lag"}; with --watch one such object per line (JSON Lines).

` + groupReportTypes,
		Example: `  floe lag
  floe lag billing --watch --interval 1s
  floe lag billing -o json | jq .total_lag`,
		Args: argsRange(0, -1, ""),
		RunE: func(cmd *cobra.Command, names []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			if interval <= 0 {
				return usageError(cmd, "--interval %v: use a positive duration such as 2s", interval)
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			if !watch {
				snap, fails, err := takeLag(ctx, adm, names)
				if err != nil {
					return err
				}
				if out == outputJSON {
					err = writeJSON(cmd.OutOrStdout(), snap)
				} else {
					err = printLag(cmd.OutOrStdout(), snap)
				}
				if err != nil {
					return err
				}
				return fails.err(cmd, len(names), "groups")
			}
			return watchLag(ctx, cmd, adm, names, interval, out)
		},
	})
	fs := cmd.Flags()
	cf.register(fs)
	fs.BoolVarP(&watch, "watch", "w", false, "refresh until Ctrl-C")
	fs.DurationVar(&interval, "interval", 2*time.Second, "how often --watch refreshes")
	addOutputFlag(fs, &output)
	return cmd
}

func takeLag(ctx context.Context, adm *kadm.Client, names []string) (lagSnapshot, failures, error) {
	reports, fails, err := groupReports(ctx, adm, names)
	if err != nil {
		return lagSnapshot{}, nil, err
	}
	snap := lagSnapshot{Time: time.Now().UTC().Format(time.RFC3339Nano), Groups: reports}
	if snap.Groups == nil {
		snap.Groups = []groupReport{}
	}
	for _, r := range reports {
		snap.TotalLag += r.TotalLag
	}
	return snap, fails, nil
}

func printLag(w io.Writer, snap lagSnapshot) error {
	if len(snap.Groups) == 0 {
		fmt.Fprintln(w, "no consumer groups")
		return nil
	}
	t := newTable(w, "GROUP", "STATE", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG")
	for _, g := range snap.Groups {
		for _, p := range g.Partitions {
			lag := any(p.Lag)
			if p.Error != "" {
				lag = "error: " + p.Error
			}
			t.row(g.Group, g.State, p.Topic, p.Partition, p.CommittedOffset, p.EndOffset, lag)
		}
		t.row(g.Group, g.State, "(total)", "", "", "", g.TotalLag)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(snap.Groups) > 1 {
		fmt.Fprintf(w, "\ntotal lag of %d groups: %d\n", len(snap.Groups), snap.TotalLag)
	}
	return nil
}

// watchLag prints a snapshot every interval until ctx ends. Errors are
// shown and retried at the next tick: a watch outlives a broker restart.
func watchLag(ctx context.Context, cmd *cobra.Command, adm *kadm.Client, names []string, interval time.Duration, out string) error {
	w := cmd.OutOrStdout()
	inPlace := out == outputText && isTerminal(w)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		snap, fails, err := takeLag(ctx, adm, names)
		if ctx.Err() != nil {
			// Interrupted while taking it: the snapshot may lack the groups
			// whose requests the interruption cut short. Print none.
			return nil
		}
		if out == outputJSON {
			if err == nil {
				if werr := writeJSONLine(w, snap); werr != nil {
					return werr
				}
			}
		} else {
			var buf bytes.Buffer // draw the whole screen at once
			if inPlace {
				buf.WriteString("\x1b[H\x1b[2J")
			} else if !first {
				buf.WriteString("\n")
			}
			fmt.Fprintf(&buf, "%s  every %v", time.Now().Format("15:04:05"), interval)
			if inPlace {
				buf.WriteString(", Ctrl-C to stop")
			}
			buf.WriteString("\n\n")
			if err == nil {
				if perr := printLag(&buf, snap); perr != nil {
					return perr
				}
			}
			if _, werr := w.Write(buf.Bytes()); werr != nil {
				return werr
			}
		}
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "floe: %v (retrying)\n", err)
		}
		for _, f := range fails {
			fmt.Fprintf(cmd.ErrOrStderr(), "floe: %v\n", f)
		}
	}
}
