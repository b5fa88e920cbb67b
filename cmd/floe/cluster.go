package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/floe-io/floe/metadata"
)

// newClusterCmd shows a cluster's record in etcd and finalizes format
// changes once every agent and compactor runs a release that reads them.
func newClusterCmd() *cobra.Command {
	var (
		etcd    etcdFlags
		cluster string
		output  string
	)
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show a cluster's record in etcd, or finalize a format change after an upgrade",
	}
	pf := cmd.PersistentFlags()
	etcd.register(pf)
	pf.StringVar(&cluster, "cluster", "default", "cluster name: the etcd key prefix /floe/<cluster>/, as for floe agent")
	addOutputFlag(pf, &output)

	// run opens the cluster's store for f, and closes it after.
	run := func(cmd *cobra.Command, f func(*metadata.Store) error) error {
		if _, err := outputFormat(cmd, output); err != nil {
			return err
		}
		cli, err := etcd.dial(cmd.Context())
		if err != nil {
			return err
		}
		defer cli.Close()
		store, err := metadata.NewStore(cli, cluster)
		if err != nil {
			return err
		}
		return f(store)
	}
	// show prints the record: cluster, id, created, log_entry_version and
	// latest_log_entry_version (what this floe writes at most) in JSON.
	show := func(cmd *cobra.Command, info metadata.ClusterInfo) error {
		out := cmd.OutOrStdout()
		if f, _ := outputFormat(cmd, output); f == outputJSON {
			return writeJSON(out, map[string]any{"cluster": cluster, "id": info.ID, "created": info.Created,
				"log_entry_version": info.EntryVersion(), "latest_log_entry_version": metadata.LatestLogEntryVersion})
		}
		fmt.Fprintf(out, "cluster            %s\n", cluster)
		fmt.Fprintf(out, "id                 %s\n", info.ID)
		fmt.Fprintf(out, "created            %s\n", info.Created.Format("2006-01-02T15:04:05Z07:00"))
		fmt.Fprintf(out, "log entry version  %d (this floe writes up to %d)\n", info.EntryVersion(), metadata.LatestLogEntryVersion)
		return nil
	}
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the cluster's ID, creation time and the log entry encoding it writes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, func(s *metadata.Store) error {
				info, err := s.Cluster(cmd.Context())
				if err != nil {
					return err
				}
				return show(cmd, info)
			})
		},
	}
	finalize := &cobra.Command{
		Use:   "finalize",
		Short: "Make the cluster write the newest log entry encoding (after every agent and compactor is upgraded)",
		Long: `Make the cluster's agents and compactor write shard log entries in the
newest encoding this floe knows (metadata/FORMAT.md), within a minute.

A cluster created by an older release writes the encoding that release
reads, so that its agents can still read every entry while a rolling
update replaces them. Once every agent and compactor runs this release,
finalize switches the cluster to the newest encoding (about a third fewer
etcd bytes per flush over thousands of partitions). It cannot be undone:
agents and compactors of the older release fail to read the entries
written after, so do not roll back past this release once it has run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, func(s *metadata.Store) error {
				info, err := s.FinalizeLogEntryVersion(cmd.Context(), metadata.LatestLogEntryVersion)
				if err != nil {
					return err
				}
				return show(cmd, info)
			})
		},
	}
	cmd.AddCommand(info, finalize)
	return cmd
}
