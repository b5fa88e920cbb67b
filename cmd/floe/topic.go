package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func newTopicCmd() *cobra.Command {
	var cf clientFlags
	cmd := clientCommand(&cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
		Long: `Manage topics of any Kafka-compatible cluster (floe or Apache Kafka) through
the Kafka protocol.

  floe topic create orders -p 6 -c retention.ms=86400000
  floe topic list
  floe topic describe orders
  floe topic alter orders --set retention.ms=3600000 --delete cleanup.policy
  floe topic add-partitions orders --total 12
  floe topic delete orders --yes

Every subcommand prints a table, or JSON with -o json.`,
		RunE: parentRunE,
	})
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(
		newTopicCreateCmd(&cf),
		newTopicListCmd(&cf),
		newTopicDescribeCmd(&cf),
		newTopicAlterCmd(&cf),
		newTopicAddPartitionsCmd(&cf),
		newTopicDeleteCmd(&cf),
	)
	return cmd
}

// topicResult is one topic's line in the JSON output of create, alter,
// add-partitions and delete.
type topicResult struct {
	Name              string `json:"name"`
	ID                string `json:"id,omitempty"`
	Partitions        int32  `json:"partitions,omitempty"`
	PartitionsBefore  int32  `json:"partitions_before,omitempty"`
	ReplicationFactor int16  `json:"replication_factor,omitempty"`
	Error             string `json:"error,omitempty"`
}

type topicResults struct {
	Topics []topicResult `json:"topics"`
}

func newTopicCreateCmd(cf *clientFlags) *cobra.Command {
	var (
		partitions int32
		rf         int16
		configs    []string
		output     string
	)
	cmd := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create topics",
		Long: `Create one or more topics. -p and -r default to the cluster's own defaults
(num.partitions, default.replication.factor). Topic configs are key=value,
one per -c.

JSON output: {"topics": [{"name", "id", "partitions", "replication_factor",
"error"}]}; "error" appears only for a topic that was not created.`,
		Example: `  floe topic create orders -p 6 -c retention.ms=86400000 -c cleanup.policy=delete`,
		Args:    argsRange(1, -1, "NAME"),
		RunE: func(cmd *cobra.Command, names []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			cfg, err := parseKeyValues(cmd, "-c/--config", configs)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			resps, err := adm.CreateTopics(ctx, partitions, rf, cfg, names...)
			if err != nil {
				return explain("creating topics", err, "")
			}
			rep := newItemReport(cmd, out, "topics", len(names))
			var res topicResults
			for _, name := range names {
				r, ok := resps[name]
				tr := topicResult{Name: name}
				switch {
				case !ok:
					tr.Error = rep.fail(fmt.Errorf("topic %q: no answer from the cluster", name))
				case r.Err != nil:
					tr.Error = rep.fail(explain(fmt.Sprintf("topic %q", name), r.Err, r.ErrMessage))
				default:
					tr.ID, tr.Partitions, tr.ReplicationFactor = topicID(r.ID), r.NumPartitions, r.ReplicationFactor
					rep.ok("created topic %s (%s, replication factor %d)", name, plural(int(r.NumPartitions), "partition"), r.ReplicationFactor)
				}
				res.Topics = append(res.Topics, tr)
			}
			return rep.finish(res)
		},
	}
	fs := cmd.Flags()
	fs.Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (-1: the cluster's num.partitions)")
	fs.Int16VarP(&rf, "replication-factor", "r", -1, "replication factor (-1: the cluster's default.replication.factor; floe reports it but keeps no copies)")
	fs.StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	addOutputFlag(fs, &output)
	return cmd
}

// parseKeyValues parses key=value flags; a value may contain '=' and ','.
func parseKeyValues(cmd *cobra.Command, flag string, kvs []string) (map[string]*string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]*string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError(cmd, "%s %q: use key=value, e.g. retention.ms=86400000", flag, kv)
		}
		m[k] = &v
	}
	return m, nil
}

// topicID prints a topic ID as Kafka's tools do: URL-safe base64 without
// padding.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// topicSummary is a topic in `floe topic list -o json`.
type topicSummary struct {
	Name              string `json:"name"`
	ID                string `json:"id,omitempty"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

func replicationFactor(td kadm.TopicDetail) int {
	rf := 0
	for _, p := range td.Partitions {
		rf = max(rf, len(p.Replicas))
	}
	return rf
}

func newTopicListCmd(cf *clientFlags) *cobra.Command {
	var (
		internal bool
		output   string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Long: `List topics with their partition count and replication factor.

JSON output: {"topics": [{"name", "id", "partitions", "replication_factor",
"internal"}]}, sorted by name.`,
		Args: argsRange(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			tds, err := list(ctx)
			if err != nil {
				return explain("listing topics", err, "")
			}
			res := struct {
				Topics []topicSummary `json:"topics"`
			}{Topics: []topicSummary{}}
			for _, td := range tds.Sorted() {
				res.Topics = append(res.Topics, topicSummary{
					Name: td.Topic, ID: topicID(td.ID), Partitions: len(td.Partitions),
					ReplicationFactor: replicationFactor(td), Internal: td.IsInternal,
				})
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			t := newTable(cmd.OutOrStdout(), "TOPIC", "PARTITIONS", "REPLICATION-FACTOR")
			for _, ts := range res.Topics {
				t.row(ts.Name, ts.Partitions, ts.ReplicationFactor)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics such as __consumer_offsets")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// topicDescription is a topic in `floe topic describe -o json`.
type topicDescription struct {
	Name       string                 `json:"name"`
	ID         string                 `json:"id,omitempty"`
	Internal   bool                   `json:"internal"`
	Partitions []partitionDescription `json:"partitions"`
	Configs    []configDescription    `json:"configs"`
	// Iceberg is the topic's export, when floe.iceberg.enabled=true.
	Iceberg *icebergDescription `json:"iceberg,omitempty"`
}

// icebergDescription is a topic's export to an Iceberg table, from its
// export group's offsets (metadata.ExportGroup).
type icebergDescription struct {
	Table string `json:"table"`
	// SnapshotID and Committed are the table's last commit (0 and null
	// before the first).
	SnapshotID int64      `json:"snapshot_id"`
	Committed  *time.Time `json:"committed"`
	// LagRecords are the offsets below the end offsets not yet in the
	// table (transaction markers count); LagSeconds how long the oldest
	// of them has waited, about: since the last commit, 0 with no lag.
	LagRecords int64   `json:"lag_records"`
	LagSeconds float64 `json:"lag_seconds"`
	// Error is why the last export failed, at ErrorAt, when that was
	// after the last commit.
	Error   string     `json:"error,omitempty"`
	ErrorAt *time.Time `json:"error_at,omitempty"`
}

type partitionDescription struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	StartOffset *int64  `json:"start_offset"`
	EndOffset   *int64  `json:"end_offset"`
	Error       string  `json:"error,omitempty"`
}

type configDescription struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

// describeTopics gathers metadata, offsets and configs of existing topics;
// unknown topics come back as errors.
func describeTopics(ctx context.Context, adm *kadm.Client, names []string, withConfigs bool) ([]topicDescription, failures, error) {
	tds, err := adm.ListTopicsWithInternal(ctx, names...)
	if err != nil {
		return nil, nil, explain("describing topics", err, "")
	}
	var fails failures
	var found []string
	for _, name := range names {
		td, ok := tds[name]
		switch {
		case !ok:
			fails = append(fails, explain(fmt.Sprintf("topic %q", name), kerr.UnknownTopicOrPartition, ""))
		case td.Err != nil:
			fails = append(fails, explain(fmt.Sprintf("topic %q", name), td.Err, ""))
		default:
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return nil, fails, nil
	}
	starts, err := adm.ListStartOffsets(ctx, found...)
	if err != nil && len(starts) == 0 {
		return nil, nil, explain("listing start offsets", err, "")
	}
	ends, err := adm.ListEndOffsets(ctx, found...)
	if err != nil && len(ends) == 0 {
		return nil, nil, explain("listing end offsets", err, "")
	}
	var rcs kadm.ResourceConfigs
	if withConfigs {
		rcs, err = adm.DescribeTopicConfigs(ctx, found...)
		if err != nil && len(rcs) == 0 {
			return nil, nil, explain("describing topic configs", err, "")
		}
	}
	var out []topicDescription
	for _, name := range found {
		td := tds[name]
		d := topicDescription{Name: name, ID: topicID(td.ID), Internal: td.IsInternal, Partitions: []partitionDescription{}, Configs: []configDescription{}}
		for _, p := range td.Partitions.Sorted() {
			pd := partitionDescription{Partition: p.Partition, Leader: p.Leader, Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR)}
			if p.Err != nil {
				pd.Error = p.Err.Error()
			}
			if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil {
				pd.StartOffset = int64p(o.Offset)
			}
			if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil {
				pd.EndOffset = int64p(o.Offset)
			} else if ok && pd.Error == "" {
				pd.Error = o.Err.Error()
			}
			d.Partitions = append(d.Partitions, pd)
		}
		if withConfigs {
			rc, err := rcs.On(name, nil)
			switch {
			case err != nil:
				fails = append(fails, explain(fmt.Sprintf("configs of topic %q", name), err, ""))
			case rc.Err != nil:
				fails = append(fails, explain(fmt.Sprintf("configs of topic %q", name), rc.Err, rc.ErrMessage))
			}
			for _, c := range rc.Configs {
				d.Configs = append(d.Configs, configDescription{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive})
			}
			sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
			if ice, err := describeExport(ctx, adm, d); err != nil {
				fails = append(fails, explain(fmt.Sprintf("the Iceberg export of topic %q", name), err, ""))
			} else {
				d.Iceberg = ice
			}
		}
		out = append(out, d)
	}
	return out, fails, nil
}

// describeExport reads a topic's export from its export group, when its
// configs say it is exported.
func describeExport(ctx context.Context, adm *kadm.Client, d topicDescription) (*icebergDescription, error) {
	configs := map[string]string{}
	for _, c := range d.Configs {
		if c.Value != nil {
			configs[c.Name] = *c.Value
		}
	}
	if !strings.EqualFold(configs["floe.iceberg.enabled"], "true") {
		return nil, nil
	}
	ice := &icebergDescription{Table: metadata.IcebergTableName(d.Name, map[string]string{"floe.iceberg.table": configs["floe.iceberg.table"]})}
	offs, err := adm.FetchOffsets(ctx, metadata.ExportGroup(d.Name))
	if err != nil {
		return nil, err
	}
	for _, p := range d.Partitions {
		if p.EndOffset == nil {
			continue
		}
		at := int64(0)
		if p.StartOffset != nil {
			at = *p.StartOffset
		}
		if o, ok := offs.Lookup(d.Name, p.Partition); ok && o.Err == nil {
			at = max(at, o.At)
			var md metadata.ExportOffsetMetadata
			if json.Unmarshal([]byte(o.Metadata), &md) != nil {
				md = metadata.ExportOffsetMetadata{}
			}
			if !md.Committed.IsZero() && (ice.Committed == nil || md.Committed.After(*ice.Committed)) {
				committed := md.Committed
				ice.Committed, ice.SnapshotID = &committed, md.SnapshotID
			}
			if md.Error != "" && md.ErrorAt != nil {
				ice.Error, ice.ErrorAt = md.Error, md.ErrorAt
			}
		}
		ice.LagRecords += max(0, *p.EndOffset-at)
	}
	if ice.LagRecords > 0 && ice.Committed != nil {
		ice.LagSeconds = time.Since(*ice.Committed).Seconds()
	}
	if ice.ErrorAt != nil && ice.Committed != nil && !ice.ErrorAt.After(*ice.Committed) {
		ice.Error, ice.ErrorAt = "", nil // a commit since
	}
	return ice, nil
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// configSourceShort names a config source for tables.
func configSourceShort(s string) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig.String():
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig.String():
		return "broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig.String():
		return "cluster"
	case kmsg.ConfigSourceStaticBrokerConfig.String():
		return "broker (static)"
	case kmsg.ConfigSourceDefaultConfig.String():
		return "default"
	}
	return strings.ToLower(s)
}

func joinInt32(s []int32) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ",")
}

func newTopicDescribeCmd(cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe NAME...",
		Short: "Show partitions (leader, replicas, offsets) and configs of topics",
		Long: `Show each topic's partitions, with leader, replicas, in-sync replicas and
start and end offsets, and every config with where its value comes from:
topic (set on the topic), broker, cluster (a cluster-wide default set at
run time), broker (static) or default.

JSON output: {"topics": [{"name", "id", "internal", "partitions":
[{"partition", "leader", "replicas", "isr", "start_offset", "end_offset",
"error"}], "configs": [{"name", "value", "source", "sensitive"}]}]}.
Offsets are null when they could not be listed ("error" says why); config
sources are Kafka's names (DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...); a
sensitive config's value is null.

A topic exported to Iceberg (floe.iceberg.enabled=true) also shows its
table, the table's last snapshot and the export's lag (from the export
group floe-iceberg.<topic>), and the last export's error if it failed
since: in JSON "iceberg": {"table", "snapshot_id", "committed",
"lag_records", "lag_seconds", "error", "error_at"}.`,
		Args: argsRange(1, -1, "NAME"),
		RunE: func(cmd *cobra.Command, names []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			descs, fails, err := describeTopics(ctx, adm, names, true)
			if err != nil {
				return err
			}
			if out == outputJSON {
				if descs == nil {
					descs = []topicDescription{}
				}
				if err := writeJSON(cmd.OutOrStdout(), struct {
					Topics []topicDescription `json:"topics"`
				}{descs}); err != nil {
					return err
				}
				return fails.err(cmd, len(names), "topics")
			}
			w := cmd.OutOrStdout()
			for i, d := range descs {
				if i > 0 {
					fmt.Fprintln(w)
				}
				rf := 0
				for _, p := range d.Partitions {
					rf = max(rf, len(p.Replicas))
				}
				fmt.Fprintf(w, "Topic: %s\n", d.Name)
				if d.ID != "" {
					fmt.Fprintf(w, "ID: %s\n", d.ID)
				}
				fmt.Fprintf(w, "Partitions: %d   Replication factor: %d\n", len(d.Partitions), rf)
				if ice := d.Iceberg; ice != nil {
					last := "no commit yet"
					if ice.Committed != nil {
						last = fmt.Sprintf("snapshot %d at %s", ice.SnapshotID, ice.Committed.Format(time.RFC3339))
					}
					fmt.Fprintf(w, "Iceberg: table %s, %s, lag %d records (%.0fs)\n", ice.Table, last, ice.LagRecords, ice.LagSeconds)
					if ice.Error != "" {
						fmt.Fprintf(w, "Iceberg export failed at %s: %s\n", ice.ErrorAt.Format(time.RFC3339), ice.Error)
					}
				}
				fmt.Fprintln(w)
				t := newTable(w, "PARTITION", "LEADER", "REPLICAS", "ISR", "START", "END")
				for _, p := range d.Partitions {
					t.row(p.Partition, p.Leader, joinInt32(p.Replicas), joinInt32(p.ISR), p.StartOffset, p.EndOffset)
				}
				if err := t.flush(); err != nil {
					return err
				}
				fmt.Fprintln(w)
				t = newTable(w, "CONFIG", "VALUE", "SOURCE")
				for _, c := range d.Configs {
					v := "-"
					switch {
					case c.Sensitive:
						v = "(sensitive)"
					case c.Value != nil:
						v = *c.Value
					}
					t.row(c.Name, v, configSourceShort(c.Source))
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			return fails.err(cmd, len(names), "topics")
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newTopicAlterCmd(cf *clientFlags) *cobra.Command {
	var (
		set    []string
		del    []string
		output string
	)
	cmd := &cobra.Command{
		Use:   "alter NAME... (--set key=value | --delete key)...",
		Short: "Set or delete topic configs",
		Long: `Change topic configs incrementally (IncrementalAlterConfigs): --set key=value
sets one, --delete key removes the topic's override so the cluster default
applies again. Other configs are left alone.

JSON output: {"topics": [{"name", "error"}]}; "error" appears only for a
topic that was not altered.`,
		Example: `  floe topic alter orders --set retention.ms=3600000 --delete cleanup.policy`,
		Args:    argsRange(1, -1, "NAME"),
		RunE: func(cmd *cobra.Command, names []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			if len(set) == 0 && len(del) == 0 {
				return usageError(cmd, "nothing to change: pass --set key=value or --delete key")
			}
			kvs, err := parseKeyValues(cmd, "--set", set)
			if err != nil {
				return err
			}
			var alters []kadm.AlterConfig
			for _, k := range slices.Sorted(maps.Keys(kvs)) {
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kvs[k]})
			}
			for _, k := range del {
				if _, both := kvs[k]; both {
					return usageError(cmd, "%s is both --set and --delete", k)
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			resps, err := adm.AlterTopicConfigs(ctx, alters, names...)
			if err != nil {
				return explain("altering topic configs", err, "")
			}
			var what []string
			for _, a := range alters {
				if a.Op == kadm.SetConfig {
					what = append(what, "set "+a.Name+"="+*a.Value)
				} else {
					what = append(what, "deleted "+a.Name)
				}
			}
			rep := newItemReport(cmd, out, "topics", len(names))
			var res topicResults
			for _, name := range names {
				tr := topicResult{Name: name}
				r, err := resps.On(name, nil)
				if err == nil {
					err = r.Err
				}
				if err != nil {
					tr.Error = rep.fail(explain(fmt.Sprintf("topic %q", name), err, r.ErrMessage))
				} else {
					rep.ok("altered topic %s: %s", name, strings.Join(what, "; "))
				}
				res.Topics = append(res.Topics, tr)
			}
			return rep.finish(res)
		},
	}
	cmd.Flags().StringArrayVar(&set, "set", nil, "set a config, key=value (repeatable)")
	cmd.Flags().StringArrayVar(&del, "delete", nil, "delete a config override, key (repeatable)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newTopicAddPartitionsCmd(cf *clientFlags) *cobra.Command {
	var (
		total  int32
		output string
	)
	cmd := &cobra.Command{
		Use:   "add-partitions NAME... --total N",
		Short: "Grow topics to N partitions",
		Long: `Add partitions so that each topic has --total partitions. Kafka cannot remove
partitions, so N below the current count is an error; N equal to it
changes nothing and succeeds, so scripts can run this repeatedly. Keys map
to partitions by hash, so adding partitions moves where new records of a
key go.

JSON output: {"topics": [{"name", "partitions_before", "partitions",
"error"}]}.`,
		Args: argsRange(1, -1, "NAME"),
		RunE: func(cmd *cobra.Command, names []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			if total <= 0 {
				return usageError(cmd, "--total N is required: the partition count each topic should have")
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			tds, err := adm.ListTopicsWithInternal(ctx, names...)
			if err != nil {
				return explain("describing topics", err, "")
			}
			rep := newItemReport(cmd, out, "topics", len(names))
			var res topicResults
			var grow []string
			before := map[string]int32{}
			for _, name := range names {
				td, ok := tds[name]
				tr := topicResult{Name: name}
				switch {
				case !ok || td.Err != nil:
					e := td.Err
					if e == nil {
						e = kerr.UnknownTopicOrPartition
					}
					tr.Error = rep.fail(explain(fmt.Sprintf("topic %q", name), e, ""))
				case int32(len(td.Partitions)) > total:
					tr.Error = rep.fail(fmt.Errorf("topic %q has %d partitions, more than --total %d: partitions cannot be removed", name, len(td.Partitions), total))
					tr.PartitionsBefore, tr.Partitions = int32(len(td.Partitions)), int32(len(td.Partitions))
				default:
					before[name] = int32(len(td.Partitions))
					tr.PartitionsBefore, tr.Partitions = before[name], before[name]
					if before[name] < total {
						grow = append(grow, name)
					}
				}
				res.Topics = append(res.Topics, tr)
			}
			var resps kadm.CreatePartitionsResponses
			if len(grow) > 0 {
				resps, err = adm.UpdatePartitions(ctx, int(total), grow...)
				if err != nil {
					return explain("adding partitions", err, "")
				}
			}
			for i := range res.Topics {
				tr := &res.Topics[i]
				b, ok := before[tr.Name]
				if !ok {
					continue
				}
				if b == total {
					rep.ok("topic %s already has %s", tr.Name, plural(int(b), "partition"))
					continue
				}
				r, err := resps.On(tr.Name, nil)
				if err == nil {
					err = r.Err
				}
				if err != nil {
					tr.Error = rep.fail(explain(fmt.Sprintf("topic %q", tr.Name), err, r.ErrMessage))
					continue
				}
				tr.Partitions = total
				rep.ok("topic %s: %d -> %d partitions", tr.Name, b, total)
			}
			return rep.finish(res)
		},
	}
	cmd.Flags().Int32Var(&total, "total", 0, "the number of partitions each topic should have (required)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newTopicDeleteCmd(cf *clientFlags) *cobra.Command {
	var (
		yes    bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "delete NAME... [--yes]",
		Short: "Delete topics and their records",
		Long: `Delete topics and every record in them. When standard input is a terminal
it shows what would be lost and asks first, unless --yes; in scripts
(stdin not a terminal) it deletes without asking. --yes is never read
from the environment.

JSON output: {"topics": [{"name", "error"}]}; "error" appears only for a
topic that was not deleted.`,
		Args: argsRange(1, -1, "NAME"),
		RunE: func(cmd *cobra.Command, names []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			if !yes && isTerminal(cmd.InOrStdin()) {
				descs, fails, err := describeTopics(ctx, adm, names, false)
				if err != nil {
					return err
				}
				if len(fails) > 0 {
					return fails.err(cmd, len(names), "topics")
				}
				var what []string
				for _, d := range descs {
					var records int64
					for _, p := range d.Partitions {
						if p.StartOffset != nil && p.EndOffset != nil {
							records += *p.EndOffset - *p.StartOffset
						}
					}
					what = append(what, fmt.Sprintf("%s (%s, %s)", d.Name, plural(len(d.Partitions), "partition"), plural(int(records), "record")))
				}
				ok, err := confirm(cmd, "Delete "+strings.Join(what, ", ")+"? This cannot be undone.")
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("not deleted (pass --yes to delete without asking)")
				}
			}
			resps, err := adm.DeleteTopics(ctx, names...)
			if err != nil {
				return explain("deleting topics", err, "")
			}
			rep := newItemReport(cmd, out, "topics", len(names))
			var res topicResults
			for _, name := range names {
				tr := topicResult{Name: name}
				r, err := resps.On(name, nil)
				if err == nil {
					err = r.Err
				}
				if err != nil {
					tr.Error = rep.fail(explain(fmt.Sprintf("topic %q", name), err, r.ErrMessage))
				} else {
					rep.ok("deleted topic %s", name)
				}
				res.Topics = append(res.Topics, tr)
			}
			return rep.finish(res)
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	markNoEnv(cmd.Flags(), "yes")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
