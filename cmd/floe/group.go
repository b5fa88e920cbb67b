package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/lagapi"
)

func newGroupCmd() *cobra.Command {
	var cf clientFlags
	cmd := clientCommand(&cobra.Command{
		Use:   "group",
		Short: "List, describe, reset and delete consumer groups",
		Long: `Inspect and manage consumer groups of any Kafka-compatible cluster.

  floe group list
  floe group describe billing
  floe group reset-offsets billing --topic orders --to-earliest            (dry run)
  floe group reset-offsets billing --topic orders --to-earliest --execute
  floe group delete billing

Groups of both types are covered: classic groups (JoinGroup, SyncGroup;
described with DescribeGroups) and consumer-protocol groups (KIP-848,
Kafka 4's group.protocol=consumer; described with ConsumerGroupDescribe).

Every subcommand prints a table, or JSON with -o json.`,
		RunE: parentRunE,
	})
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(
		newGroupListCmd(&cf),
		newGroupDescribeCmd(&cf),
		newGroupResetCmd(&cf),
		newGroupDeleteCmd(&cf),
	)
	return cmd
}

// Group types, as ListGroups v5 names them.
const (
	groupTypeClassic  = "classic"
	groupTypeConsumer = "consumer" // KIP-848's consumer protocol
)

// groupSummary is a group in `floe group list -o json`.
type groupSummary struct {
	Group        string `json:"group"`
	Type         string `json:"type"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol"`
	Assignor     string `json:"assignor,omitzero"`
	Members      int    `json:"members"`
	Coordinator  int32  `json:"coordinator"`
}

func newGroupListCmd(cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Long: `List consumer groups with their type, state and number of members.

The type is "classic" or "consumer" (a consumer-protocol group, KIP-848):
as ListGroups reports it, or where it does not say (Kafka before 3.8) as
describing the group shows.
A classic group's protocol is the one its members chose (PROTOCOL shows
"consumer/range"); a consumer-protocol group's assignor is the server
assignor computing its assignment (PROTOCOL shows "consumer/uniform").

JSON output: {"groups": [{"group", "type", "state", "protocol_type",
"protocol", "assignor", "members", "coordinator"}]}, sorted by group;
"assignor" only for consumer-protocol groups; "coordinator" is the node
ID of the broker coordinating the group.`,
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
			listed, err := adm.ListGroups(ctx)
			if err != nil {
				return explain("listing groups", err, "")
			}
			res := struct {
				Groups []groupSummary `json:"groups"`
			}{Groups: []groupSummary{}}
			// DescribeGroups describes classic groups, ConsumerGroupDescribe
			// consumer-protocol groups: those listed as such, and those
			// DescribeGroups does not know (listed without a type).
			var classic, consumer []string
			for _, l := range listed.Sorted() {
				if l.GroupType == groupTypeConsumer {
					consumer = append(consumer, l.Group)
				} else {
					classic = append(classic, l.Group)
				}
			}
			var described kadm.DescribedGroups
			if len(classic) > 0 {
				described, err = adm.DescribeGroups(ctx, classic...)
				if err != nil && len(described) == 0 {
					return explain("describing groups", err, "")
				}
			}
			for _, g := range classic {
				if d, ok := described[g]; ok && notClassic(d.Err, d.State) {
					consumer = append(consumer, g)
				}
			}
			consumerGroups, _, err := describeConsumerGroups(ctx, adm, consumer)
			if err != nil {
				return err
			}
			for _, l := range listed.Sorted() {
				gs := groupSummary{Group: l.Group, Type: l.GroupType, State: l.State, ProtocolType: l.ProtocolType, Coordinator: l.Coordinator}
				if cg, ok := consumerGroups[l.Group]; ok {
					gs.Type, gs.State, gs.Assignor, gs.Members = groupTypeConsumer, cg.State, cg.AssignorName, len(cg.Members)
				} else if d, ok := described[l.Group]; ok && d.Err == nil {
					gs.State, gs.Protocol, gs.Members = d.State, d.Protocol, len(d.Members)
					if gs.Type == "" && d.State != "Dead" {
						gs.Type = groupTypeClassic
					}
				}
				res.Groups = append(res.Groups, gs)
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			t := newTable(cmd.OutOrStdout(), "GROUP", "STATE", "MEMBERS", "PROTOCOL", "TYPE")
			for _, g := range res.Groups {
				t.row(g.Group, g.State, g.Members, protocolOf(g.ProtocolType, g.Protocol, g.Assignor), dash(g.Type))
			}
			return t.flush()
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// protocolOf is a group's protocol as tables show it: the protocol type
// and the classic protocol or server assignor ("consumer/range"), or "-".
func protocolOf(protocolType, protocol, assignor string) string {
	proto := protocolType
	if protocol == "" {
		protocol = assignor
	}
	if protocol != "" {
		proto += "/" + protocol
	}
	return dash(proto)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// notClassic reports whether DescribeGroups says a group is not a classic
// group: Kafka 4 and floe answer GROUP_ID_NOT_FOUND (v6) for a
// consumer-protocol group as for no group, older versions "Dead".
func notClassic(err error, state string) bool {
	return errors.Is(err, kerr.GroupIDNotFound) || err == nil && state == "Dead"
}

// describeConsumerGroups describes consumer-protocol (KIP-848) groups
// with ConsumerGroupDescribe. It returns the groups that are
// consumer-protocol groups, and the errors of those that could not be
// described; a group in neither is no consumer-protocol group
// (GROUP_ID_NOT_FOUND), or the cluster does not serve
// ConsumerGroupDescribe (Kafka before 4.0) and so has none.
func describeConsumerGroups(ctx context.Context, adm *kadm.Client, groups []string) (map[string]kadm.DescribedConsumerGroup, map[string]error, error) {
	found := map[string]kadm.DescribedConsumerGroup{}
	errs := map[string]error{}
	if len(groups) == 0 {
		return found, errs, nil // DescribeConsumerGroups with none describes them all
	}
	described, err := adm.DescribeConsumerGroups(ctx, groups...)
	var se *kadm.ShardErrors
	switch {
	case err == nil:
	case errors.As(err, &se):
		for _, e := range se.Errs {
			if req, ok := e.Req.(*kmsg.ConsumerGroupDescribeRequest); ok {
				for _, g := range req.Groups {
					errs[g] = e.Err
				}
			}
		}
	default:
		if servesConsumerGroupDescribe(ctx, adm) {
			return nil, nil, explain("describing consumer-protocol groups", err, "")
		}
		return found, errs, nil
	}
	for g, d := range described {
		switch {
		case d.Err == nil:
			found[g] = d
		case !errors.Is(d.Err, kerr.GroupIDNotFound):
			errs[g] = d.Err
		}
	}
	if len(errs) > 0 && !servesConsumerGroupDescribe(ctx, adm) {
		clear(errs)
	}
	return found, errs, nil
}

// servesConsumerGroupDescribe reports whether some broker serves
// ConsumerGroupDescribe; true when that cannot be told.
func servesConsumerGroupDescribe(ctx context.Context, adm *kadm.Client) bool {
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return true
	}
	known := false
	for _, v := range vs {
		if v.Err != nil {
			continue
		}
		known = true
		if _, ok := v.KeyMaxVersion(kmsg.ConsumerGroupDescribe.Int16()); ok {
			return true
		}
	}
	return !known
}

// groupReport is a group with its members and lag, as `floe group describe`
// and `floe lag` print it in JSON. Its members are the lag API's (GET
// /v1/groups/{group}); the rest is its own, built from what kadm reports:
// an offset that could not be read is null, with an "error", and there is
// no status or commit window. A classic group's comes from kadm's Lag
// (DescribeGroups), a consumer-protocol group's from
// ConsumerGroupDescribe (consumerGroupLags).
type groupReport struct {
	Group        string `json:"group"`
	Type         string `json:"type"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol"`
	// A consumer-protocol group's epoch, target assignment epoch and
	// server assignor; omitted for a classic group.
	Epoch           *int32                `json:"epoch,omitzero"`
	AssignmentEpoch *int32                `json:"assignment_epoch,omitzero"`
	Assignor        string                `json:"assignor,omitzero"`
	Coordinator     int32                 `json:"coordinator"`
	Members         []lagapi.MemberReport `json:"members"`
	Partitions      []partitionLag        `json:"partitions"`
	Topics          []topicLag            `json:"topics"`
	TotalLag        int64                 `json:"total_lag"`
	MaxLag          int64                 `json:"max_lag"`
}

type partitionLag struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset *int64 `json:"committed_offset"`
	StartOffset     *int64 `json:"start_offset"`
	EndOffset       *int64 `json:"end_offset"`
	Lag             *int64 `json:"lag"`
	MemberID        string `json:"member_id"`
	Error           string `json:"error,omitempty"`
}

type topicLag struct {
	Topic string `json:"topic"`
	Lag   int64  `json:"lag"`
}

const groupReportFields = `{"group", "type", "state", "protocol_type", "protocol",
"epoch", "assignment_epoch", "assignor", "coordinator", "members":
[{"member_id", "instance_id", "client_id", "client_host", "member_epoch",
"assignments": [{"topic", "partitions"}], "target_assignments":
[{"topic", "partitions"}]}], "partitions": [{"topic", "partition",
"committed_offset", "start_offset", "end_offset", "lag", "member_id",
"error"}], "topics": [{"topic", "lag"}], "total_lag", "max_lag"}`

// groupReportTypes says which fields of groupReportFields depend on the
// group's type.
const groupReportTypes = `"type" is "classic" or "consumer". Only a consumer-protocol group has
"epoch" (the group epoch), "assignment_epoch" (that of its target
assignment), "assignor" (its server assignor) and, per member,
"member_epoch" and "target_assignments" (where the member is moving to).`

const lagRules = `Lag is the end offset (high watermark) minus the committed offset. A
partition assigned to a member but without a committed offset counts from
the start offset (its committed_offset is null), as do the other
partitions of the topics a group's members consume or committed to. A
partition whose offsets could not be read has a null lag and an "error",
and is left out of the totals. member_id is "" for a partition no member
owns; a consumer-protocol group's members own their current assignments
(a partition one member is giving up to another is nobody's until the
other has it).`

// groupReports describes groups and their lag. With no names, every group.
// Named groups that do not exist come back as failures.
//
// kadm's Lag describes groups with DescribeGroups, which describes classic
// groups only (and lists only those when no names are given): groups it
// does not know (notClassic), and every group listed as a
// consumer-protocol group, are described with ConsumerGroupDescribe.
func groupReports(ctx context.Context, adm *kadm.Client, names []string) ([]groupReport, failures, error) {
	lags, err := adm.Lag(ctx, names...)
	if err != nil {
		return nil, nil, explain("describing groups", err, "")
	}
	var others []string
	for _, l := range lags.Sorted() {
		if l.FetchErr == nil && notClassic(l.DescribeErr, l.State) && len(l.Lag) == 0 {
			others = append(others, l.Group)
		}
	}
	if len(names) == 0 {
		listed, err := adm.ListGroupsByType(ctx, []string{groupTypeConsumer})
		var se *kadm.ShardErrors
		if err != nil && !errors.As(err, &se) {
			return nil, nil, explain("listing groups", err, "")
		}
		for _, l := range listed {
			// A broker before ListGroups v5 lists every group, untyped.
			if _, ok := lags[l.Group]; !ok && l.GroupType == groupTypeConsumer {
				others = append(others, l.Group)
			}
		}
	}
	consumerGroups, consumerErrs, err := describeConsumerGroups(ctx, adm, others)
	if err != nil {
		return nil, nil, err
	}
	consumerLags, fetchErrs, err := consumerGroupLags(ctx, adm, consumerGroups)
	if err != nil {
		return nil, nil, err
	}
	var fails failures
	var out []groupReport
	isOther := map[string]bool{}
	for _, g := range others {
		isOther[g] = true
	}
	all := slices.Concat(slices.Collect(maps.Keys(lags)), others)
	slices.Sort(all)
	for _, group := range slices.Compact(all) {
		subject := fmt.Sprintf("group %q", group)
		if !isOther[group] {
			l := lags[group]
			if err := l.Error(); err != nil {
				fails = append(fails, explain(subject, err, ""))
				continue
			}
			out = append(out, newGroupReport(l))
			continue
		}
		cg, ok := consumerGroups[group]
		switch err := cmp.Or(consumerErrs[group], fetchErrs[group]); {
		case err != nil:
			fails = append(fails, explain(subject, err, ""))
		case ok:
			out = append(out, newConsumerGroupReport(cg, consumerLags[group]))
		case len(names) > 0:
			// Neither a classic nor a consumer-protocol group.
			fails = append(fails, explain(subject, kerr.GroupIDNotFound, ""))
		}
		// Without names: deleted while we looked.
	}
	return out, fails, nil
}

// consumerGroupLags computes the lag of consumer-protocol groups by the
// rules kadm's Lag follows for classic groups: it fetches their
// committed offsets and the start and end offsets of the topics they
// consume or committed to, and hands CalculateGroupLagWithStartOffsets
// the commits with every other partition the group consumes added as
// uncommitted (offset -1, as OffsetFetch answers for one), since it
// cannot take a consumer-protocol group's members. A group whose offsets
// cannot be fetched gets an error instead.
func consumerGroupLags(ctx context.Context, adm *kadm.Client, groups map[string]kadm.DescribedConsumerGroup) (map[string]kadm.GroupLag, map[string]error, error) {
	lags := map[string]kadm.GroupLag{}
	errs := map[string]error{}
	if len(groups) == 0 {
		return lags, errs, nil
	}
	fetched := adm.FetchManyOffsets(ctx, slices.Sorted(maps.Keys(groups))...)
	consumed := map[string]kadm.TopicsSet{} // per group: the partitions and topics it consumes
	wanted := kadm.TopicsSet{}
	for g, d := range groups {
		if err := fetched[g].Err; err != nil {
			var ae *kadm.AuthError
			if errors.As(err, &ae) {
				return nil, nil, explain(fmt.Sprintf("group %q", g), err, "")
			}
			errs[g] = err
			continue
		}
		ts := d.AssignedPartitions()
		ts.Merge(d.TargetPartitions())
		ts.MergeTopics(d.SubscribedTopics())
		delete(ts, "") // a topic deleted since it was assigned has no name
		consumed[g] = ts
		wanted.Merge(ts)
		wanted.Merge(fetched[g].CommittedPartitions())
	}
	starts, ends, err := listGroupOffsets(ctx, adm, wanted)
	if err != nil {
		return nil, nil, err
	}
	for g, ts := range consumed {
		commits := kadm.OffsetResponses{}
		for t, ps := range fetched[g].Fetched {
			commits[t] = maps.Clone(ps)
		}
		uncommitted := func(t string, p int32) {
			if _, ok := commits[t][p]; ok {
				return
			}
			if commits[t] == nil {
				commits[t] = map[int32]kadm.OffsetResponse{}
			}
			commits[t][p] = kadm.OffsetResponse{Offset: kadm.Offset{Topic: t, Partition: p, At: -1, LeaderEpoch: -1}}
		}
		ts.Each(uncommitted) // owned and target partitions, even where no offset was listed
		for _, t := range ts.Topics() {
			for p := range ends[t] {
				uncommitted(t, p)
			}
		}
		lags[g] = kadm.CalculateGroupLagWithStartOffsets(kadm.DescribedGroup{Group: g}, commits, starts, ends)
	}
	return lags, errs, nil
}

// listGroupOffsets lists the start and end offsets of wanted's topics as
// kadm's Lag does: partitions a broker did not answer for are missing
// (CalculateGroupLag reports them), and those of a topic that does not
// exist get UNKNOWN_TOPIC_OR_PARTITION.
func listGroupOffsets(ctx context.Context, adm *kadm.Client, wanted kadm.TopicsSet) (starts, ends kadm.ListedOffsets, err error) {
	topics := wanted.Topics()
	if len(topics) == 0 {
		return nil, nil, nil
	}
	list := func(what string, fn func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		listed, err := fn(ctx, topics...)
		var se *kadm.ShardErrors
		if err != nil && !errors.As(err, &se) {
			return nil, explain("listing "+what+" offsets", err, "")
		}
		for t, ps := range listed {
			if _, ok := ps[-1]; !ok || len(ps) != 1 {
				continue
			}
			delete(ps, -1)
			for p := range wanted[t] {
				ps[p] = kadm.ListedOffset{Topic: t, Partition: p, Err: kerr.UnknownTopicOrPartition}
			}
		}
		return listed, nil
	}
	if starts, err = list("start", adm.ListStartOffsets); err != nil {
		return nil, nil, err
	}
	if ends, err = list("end", adm.ListEndOffsets); err != nil {
		return nil, nil, err
	}
	return starts, ends, nil
}

func newGroupReport(l kadm.DescribedGroupLag) groupReport {
	r := groupReport{
		Group: l.Group, Type: groupTypeClassic, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID,
		Members:     []lagapi.MemberReport{}, Partitions: []partitionLag{}, Topics: []topicLag{},
	}
	for _, m := range l.Members {
		mr := lagapi.MemberReport{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assignments: []lagapi.TopicPartitions{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				mr.Assignments = append(mr.Assignments, lagapi.TopicPartitions{Topic: t.Topic, Partitions: ps})
			}
			sort.Slice(mr.Assignments, func(i, j int) bool { return mr.Assignments[i].Topic < mr.Assignments[j].Topic })
		}
		r.Members = append(r.Members, mr)
	}
	r.addLag(l.Lag, func(ml kadm.GroupMemberLag) string {
		if ml.Member != nil {
			return ml.Member.MemberID
		}
		return ""
	})
	return r
}

func newConsumerGroupReport(d kadm.DescribedConsumerGroup, lag kadm.GroupLag) groupReport {
	r := groupReport{
		Group: d.Group, Type: groupTypeConsumer, State: d.State, ProtocolType: groupTypeConsumer,
		Epoch: &d.Epoch, AssignmentEpoch: &d.AssignmentEpoch, Assignor: d.AssignorName,
		Coordinator: d.Coordinator.NodeID,
		Members:     []lagapi.MemberReport{}, Partitions: []partitionLag{}, Topics: []topicLag{},
	}
	owner := map[string]map[int32]string{}
	for _, m := range d.Members {
		r.Members = append(r.Members, lagapi.MemberReport{
			MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, MemberEpoch: &m.MemberEpoch,
			Assignments: topicsOf(m.Assignment), TargetAssignments: topicsOf(m.TargetAssignment),
		})
		m.Assignment.Each(func(t string, p int32) {
			if owner[t] == nil {
				owner[t] = map[int32]string{}
			}
			owner[t][p] = m.MemberID
		})
	}
	r.addLag(lag, func(ml kadm.GroupMemberLag) string { return owner[ml.Topic][ml.Partition] })
	return r
}

// topicsOf lists s by topic, never nil, leaving out topics without a name
// (deleted since they were assigned).
func topicsOf(s kadm.TopicsSet) []lagapi.TopicPartitions {
	out := []lagapi.TopicPartitions{}
	for _, tp := range s.Sorted() {
		if tp.Topic != "" && len(tp.Partitions) > 0 {
			out = append(out, lagapi.TopicPartitions{Topic: tp.Topic, Partitions: tp.Partitions})
		}
	}
	return out
}

// addLag adds lag's partitions, per-topic lag and totals to r; member
// names the member owning a partition, or "".
func (r *groupReport) addLag(lag kadm.GroupLag, member func(kadm.GroupMemberLag) string) {
	byTopic := map[string]int64{}
	for _, ml := range lag.Sorted() {
		pl := partitionLag{Topic: ml.Topic, Partition: ml.Partition, MemberID: member(ml)}
		if ml.Commit.At >= 0 {
			pl.CommittedOffset = int64p(ml.Commit.At)
		}
		if ml.Start.Err == nil {
			pl.StartOffset = int64p(ml.Start.Offset)
		}
		if ml.End.Err == nil {
			pl.EndOffset = int64p(ml.End.Offset)
		}
		if ml.Err != nil {
			pl.Error = explain(fmt.Sprintf("%s/%d", ml.Topic, ml.Partition), ml.Err, "").Error()
		} else {
			pl.Lag = int64p(ml.Lag)
			byTopic[ml.Topic] += ml.Lag
			r.TotalLag += ml.Lag
			r.MaxLag = max(r.MaxLag, ml.Lag)
		}
		if _, ok := byTopic[ml.Topic]; !ok {
			byTopic[ml.Topic] = 0
		}
		r.Partitions = append(r.Partitions, pl)
	}
	for _, t := range slices.Sorted(maps.Keys(byTopic)) {
		r.Topics = append(r.Topics, topicLag{Topic: t, Lag: byTopic[t]})
	}
}

func shortMember(id string) string {
	if id == "" {
		return "-"
	}
	return id
}

func newGroupDescribeCmd(cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's state, members, assignments, committed offsets and lag",
		Long: `Show each group's type and state, its members with the partitions assigned
to them, and per partition the committed offset, the end offset and the
lag. For a consumer-protocol group (KIP-848) also its group epoch, the
epoch of its target assignment and its server assignor, and per member
its epoch and its target assignment (where it is moving to while the
group is Reconciling).

` + lagRules + `

JSON output: {"groups": [` + groupReportFields + `]}.

` + groupReportTypes,
		Args: argsRange(1, -1, "GROUP"),
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
			reports, fails, err := groupReports(ctx, adm, names)
			if err != nil {
				return err
			}
			if out == outputJSON {
				if reports == nil {
					reports = []groupReport{}
				}
				if err := writeJSON(cmd.OutOrStdout(), struct {
					Groups []groupReport `json:"groups"`
				}{reports}); err != nil {
					return err
				}
				return fails.err(cmd, len(names), "groups")
			}
			w := cmd.OutOrStdout()
			for i, r := range reports {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if err := printGroupReport(w, r); err != nil {
					return err
				}
			}
			return fails.err(cmd, len(names), "groups")
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func printGroupReport(w io.Writer, r groupReport) error {
	fmt.Fprintf(w, "Group: %s\n", r.Group)
	fmt.Fprintf(w, "Type: %s   State: %s   Protocol: %s   Members: %d   Coordinator: %d\n", dash(r.Type), r.State, protocolOf(r.ProtocolType, r.Protocol, ""), len(r.Members), r.Coordinator)
	consumer := r.Epoch != nil
	if consumer {
		fmt.Fprintf(w, "Epoch: %d   Assignment epoch: %d   Assignor: %s\n", *r.Epoch, *r.AssignmentEpoch, dash(r.Assignor))
	}
	fmt.Fprintf(w, "Lag: %d total, %d max\n", r.TotalLag, r.MaxLag)
	if len(r.Members) > 0 {
		fmt.Fprintln(w)
		var t *table
		if consumer {
			t = newTable(w, "MEMBER", "CLIENT-ID", "HOST", "EPOCH", "ASSIGNMENT", "TARGET")
		} else {
			t = newTable(w, "MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT")
		}
		for _, m := range r.Members {
			if consumer {
				t.row(m.MemberID, m.ClientID, m.ClientHost, *m.MemberEpoch, assignmentText(m.Assignments), assignmentText(m.TargetAssignments))
			} else {
				t.row(m.MemberID, m.ClientID, m.ClientHost, assignmentText(m.Assignments))
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(r.Partitions) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER")
		for _, p := range r.Partitions {
			lag := any(p.Lag)
			if p.Error != "" {
				lag = "error: " + p.Error
			}
			t.row(p.Topic, p.Partition, p.CommittedOffset, p.EndOffset, lag, shortMember(p.MemberID))
		}
		return t.flush()
	}
	return nil
}

// assignmentText shows partitions as "orders:0,1 payments:2", or "-".
func assignmentText(tps []lagapi.TopicPartitions) string {
	var as []string
	for _, a := range tps {
		as = append(as, a.Topic+":"+joinInt32(a.Partitions))
	}
	return dash(strings.Join(as, " "))
}

// resetPlanRow is one partition in `floe group reset-offsets -o json`.
type resetPlanRow struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset *int64 `json:"current_offset"`
	NewOffset     int64  `json:"new_offset"`
	StartOffset   int64  `json:"start_offset"`
	EndOffset     int64  `json:"end_offset"`
	Error         string `json:"error,omitempty"`
}

type resetPlan struct {
	Group      string         `json:"group"`
	Executed   bool           `json:"executed"`
	Partitions []resetPlanRow `json:"partitions"`
}

// resetCommitBatch is how many partitions one OffsetCommit carries (a
// variable for tests).
var resetCommitBatch = 500

func newGroupResetCmd(cf *clientFlags) *cobra.Command {
	var (
		topicSpecs []string
		allTopics  bool
		toEarliest bool
		toLatest   bool
		toDatetime string
		toOffset   int64
		shiftBy    int64
		execute    bool
		output     string
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP (--topic TOPIC[:P,P...]... | --all-topics) (--to-earliest | --to-latest | --to-datetime TIME | --to-offset N | --shift-by N) [--execute]",
		Short: "Move a group's committed offsets (a dry run unless --execute)",
		Long: `Move the committed offsets of a consumer group, as kafka-consumer-groups
--reset-offsets does. Without --execute it only prints the plan: each
partition's current committed offset and the new one. With --execute it
commits the new offsets. The group must have no active members (stop its
consumers first), as Kafka requires; a group that does not exist yet is
created with these offsets.

  --to-earliest        the start of each partition
  --to-latest          the end: skip everything not yet consumed
  --to-datetime TIME   the first record at or after TIME (RFC 3339, e.g.
                       2024-05-01T12:00:00Z); the end if there is none
  --to-offset N        offset N
  --shift-by N         the committed offset plus N (negative: back); a
                       partition without a committed offset is an error
New offsets are clamped to what exists, between each partition's start
and end offsets. --execute is never read from the environment.

JSON output: {"group", "executed", "partitions": [{"topic", "partition",
"current_offset", "new_offset", "start_offset", "end_offset", "error"}]};
current_offset is null where nothing was committed, "error" appears where
a commit failed.`,
		Example: `  floe group reset-offsets billing --topic orders --to-datetime 2024-05-01T12:00:00Z
  floe group reset-offsets billing --topic orders:0,1 --shift-by -100 --execute`,
		Args: argsRange(1, 1, "GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			fs := cmd.Flags()
			var how []string
			for _, f := range []string{"to-earliest", "to-latest", "to-datetime", "to-offset", "shift-by"} {
				if fs.Changed(f) {
					how = append(how, "--"+f)
				}
			}
			if len(how) != 1 {
				return usageError(cmd, "say where to move the offsets with exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset or --shift-by (got %d)", len(how))
			}
			if (len(topicSpecs) == 0) == !allTopics {
				return usageError(cmd, "say which partitions with --topic TOPIC[:P,P...] (repeatable) or --all-topics")
			}
			var at time.Time
			if toDatetime != "" {
				if at, err = time.Parse(time.RFC3339Nano, toDatetime); err != nil {
					return usageError(cmd, "--to-datetime %q: use RFC 3339, e.g. 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00", toDatetime)
				}
			}
			if fs.Changed("to-offset") && toOffset < 0 {
				return usageError(cmd, "--to-offset %d: use an offset from 0", toOffset)
			}
			wanted := map[string][]int32{} // nil: every partition
			for _, spec := range topicSpecs {
				t, ps, err := parseTopicSpec(spec)
				if err != nil {
					return usageError(cmd, "--topic %v", err)
				}
				wanted[t] = append(wanted[t], ps...)
			}

			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			if err := checkInactive(ctx, adm, group); err != nil {
				return err
			}
			committed, err := adm.FetchOffsets(ctx, group)
			if errors.Is(err, kerr.GroupIDNotFound) {
				committed, err = kadm.OffsetResponses{}, nil // a new group (Kafka 4 says so)
			}
			if err == nil {
				err = committed.Error()
			}
			if err != nil {
				return explain(fmt.Sprintf("group %q", group), err, "")
			}
			if allTopics {
				for t := range committed {
					wanted[t] = nil
				}
				if len(wanted) == 0 {
					return fmt.Errorf("group %q has no committed offsets; name topics with --topic", group)
				}
			}
			topics := slices.Sorted(maps.Keys(wanted))
			plan, err := planReset(ctx, adm, group, topics, wanted, committed, func(row *resetPlanRow, ts int64) error {
				switch {
				case toEarliest:
					row.NewOffset = row.StartOffset
				case toLatest:
					row.NewOffset = row.EndOffset
				case fs.Changed("to-offset"):
					row.NewOffset = toOffset
				case fs.Changed("shift-by"):
					if row.CurrentOffset == nil {
						return fmt.Errorf("%s/%d has no committed offset to shift: use --to-earliest, --to-latest, --to-offset or --to-datetime for it", row.Topic, row.Partition)
					}
					row.NewOffset = *row.CurrentOffset + shiftBy
				case toDatetime != "":
					row.NewOffset = ts
				}
				row.NewOffset = min(max(row.NewOffset, row.StartOffset), row.EndOffset)
				return nil
			}, toDatetime != "", at)
			if err != nil {
				return err
			}
			var fails failures
			if execute {
				fails = commitReset(ctx, cmd, adm, plan)
				plan.Executed = true
			}
			if out == outputJSON {
				if err := writeJSON(cmd.OutOrStdout(), plan); err != nil {
					return err
				}
			} else {
				t := newTable(cmd.OutOrStdout(), "TOPIC", "PARTITION", "CURRENT", "NEW", "START", "END")
				for _, r := range plan.Partitions {
					t.row(r.Topic, r.Partition, r.CurrentOffset, r.NewOffset, r.StartOffset, r.EndOffset)
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			switch {
			case !execute:
				fmt.Fprintf(cmd.ErrOrStderr(), "dry run: nothing changed; run again with --execute to move %s of group %s\n", plural(len(plan.Partitions), "partition"), group)
			case len(fails) == 0:
				fmt.Fprintf(cmd.ErrOrStderr(), "moved the committed offsets of %s of group %s\n", plural(len(plan.Partitions), "partition"), group)
			}
			return fails.err(cmd, len(plan.Partitions), "partitions")
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&topicSpecs, "topic", nil, "a topic, or topic:P,P,... for some partitions (repeatable)")
	fs.BoolVar(&allTopics, "all-topics", false, "every topic the group has committed offsets for")
	fs.BoolVar(&toEarliest, "to-earliest", false, "move to the start of each partition")
	fs.BoolVar(&toLatest, "to-latest", false, "move to the end of each partition")
	fs.StringVar(&toDatetime, "to-datetime", "", "move to the first record at or after this RFC 3339 time")
	fs.Int64Var(&toOffset, "to-offset", 0, "move to this offset")
	fs.Int64Var(&shiftBy, "shift-by", 0, "move by N from the committed offset (negative: back)")
	fs.BoolVar(&execute, "execute", false, "commit the new offsets (without it: a dry run)")
	markNoEnv(fs, "execute")
	addOutputFlag(fs, &output)
	return cmd
}

// parseTopicSpec parses TOPIC or TOPIC:P,P,...
func parseTopicSpec(spec string) (string, []int32, error) {
	t, list, hasList := strings.Cut(spec, ":")
	if t == "" {
		return "", nil, fmt.Errorf("%q: use TOPIC or TOPIC:P,P,...", spec)
	}
	if !hasList {
		return t, nil, nil
	}
	var ps []int32
	for _, s := range strings.Split(list, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || p < 0 {
			return "", nil, fmt.Errorf("%q: partition %q is not a number; use TOPIC or TOPIC:P,P,...", spec, s)
		}
		ps = append(ps, int32(p))
	}
	return t, ps, nil
}

// checkInactive refuses to move the offsets of a group with members, as
// Kafka does, whether it is a classic or a consumer-protocol group. A
// group that does not exist is fine.
func checkInactive(ctx context.Context, adm *kadm.Client, group string) error {
	subject := fmt.Sprintf("group %q", group)
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil && len(described) == 0 {
		return explain(subject, err, "")
	}
	d, ok := described[group]
	if ok && d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return explain(subject, d.Err, "")
	}
	state, members := d.State, len(d.Members)
	if !ok || notClassic(d.Err, d.State) {
		found, errs, err := describeConsumerGroups(ctx, adm, []string{group})
		if err != nil {
			return err
		}
		if err := errs[group]; err != nil {
			return explain(subject, err, "")
		}
		cg, ok := found[group]
		if !ok {
			return nil
		}
		state, members = cg.State, len(cg.Members)
	}
	if members > 0 || (state != "Empty" && state != "Dead" && state != "") {
		return fmt.Errorf("group %q is active (%s, %s): stop its consumers first; offsets can only be reset while a group is empty (see `floe group describe %s`)", group, state, plural(members, "member"), group)
	}
	return nil
}

// planReset lists the partitions to move with their offsets and asks move
// for each new offset. With byTime, ts is the offset for time at.
func planReset(ctx context.Context, adm *kadm.Client, group string, topics []string, wanted map[string][]int32,
	committed kadm.OffsetResponses, move func(row *resetPlanRow, ts int64) error, byTime bool, at time.Time,
) (*resetPlan, error) {
	tds, err := adm.ListTopicsWithInternal(ctx, topics...)
	if err != nil {
		return nil, explain("describing topics", err, "")
	}
	for _, t := range topics {
		td, ok := tds[t]
		if !ok || td.Err != nil {
			e := kerr.UnknownTopicOrPartition
			if ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				return nil, explain(fmt.Sprintf("topic %q", t), td.Err, "")
			}
			return nil, explain(fmt.Sprintf("topic %q", t), e, "")
		}
		for _, p := range wanted[t] {
			if _, ok := td.Partitions[p]; !ok {
				return nil, fmt.Errorf("topic %q has %d partitions (0 to %d): partition %d does not exist", t, len(td.Partitions), len(td.Partitions)-1, p)
			}
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, explain("listing start offsets", err, "")
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, explain("listing end offsets", err, "")
	}
	var times kadm.ListedOffsets
	if byTime {
		times, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topics...)
		if err == nil {
			err = times.Error()
		}
		if err != nil {
			return nil, explain("listing offsets by time", err, "")
		}
	}
	plan := &resetPlan{Group: group, Partitions: []resetPlanRow{}}
	for _, t := range topics {
		ps := wanted[t]
		if ps == nil {
			for p := range tds[t].Partitions {
				ps = append(ps, p)
			}
		}
		slices.Sort(ps)
		ps = slices.Compact(ps)
		for _, p := range ps {
			s, _ := starts.Lookup(t, p)
			e, _ := ends.Lookup(t, p)
			row := resetPlanRow{Topic: t, Partition: p, StartOffset: s.Offset, EndOffset: e.Offset}
			if c, ok := committed.Lookup(t, p); ok && c.At >= 0 {
				row.CurrentOffset = int64p(c.At)
			}
			var ts int64
			if byTime {
				o, _ := times.Lookup(t, p)
				ts = o.Offset
				if ts < 0 {
					ts = e.Offset
				}
			}
			if err := move(&row, ts); err != nil {
				return nil, err
			}
			plan.Partitions = append(plan.Partitions, row)
		}
	}
	return plan, nil
}

// commitReset commits the plan in batches, with a progress bar when there
// are many.
func commitReset(ctx context.Context, cmd *cobra.Command, adm *kadm.Client, plan *resetPlan) failures {
	prog := &progress{}
	if len(plan.Partitions) > resetCommitBatch {
		prog = newProgress(cmd, "resetting", int64(len(plan.Partitions)))
	}
	defer prog.finish()
	var fails failures
	for start := 0; start < len(plan.Partitions); start += resetCommitBatch {
		batch := plan.Partitions[start:min(start+resetCommitBatch, len(plan.Partitions))]
		offs := kadm.Offsets{}
		for _, r := range batch {
			offs.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.NewOffset, LeaderEpoch: -1})
		}
		resps, err := adm.CommitOffsets(ctx, plan.Group, offs)
		for i := range batch {
			r := &batch[i]
			e := err
			if e == nil {
				if c, ok := resps.Lookup(r.Topic, r.Partition); !ok {
					e = errors.New("no answer for this partition")
				} else {
					e = c.Err
				}
			}
			if errors.Is(e, kerr.UnknownMemberID) {
				// A commit from outside the group: members joined since
				// checkInactive.
				e = fmt.Errorf("group %q: committing %s/%d: the group has active members again: stop its consumers first", plan.Group, r.Topic, r.Partition)
			} else if e != nil {
				e = explain(fmt.Sprintf("group %q: committing %s/%d", plan.Group, r.Topic, r.Partition), e, "")
				r.Error = e.Error()
				fails = append(fails, e)
			}
		}
		prog.add(int64(len(batch)))
	}
	return fails
}

func newGroupDeleteCmd(cf *clientFlags) *cobra.Command {
	var (
		yes    bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "delete GROUP... [--yes]",
		Short: "Delete consumer groups and their committed offsets",
		Long: `Delete groups and their committed offsets. A group with active members
cannot be deleted: stop its consumers first. When standard input is a
terminal it asks first, unless --yes (never read from the environment).

JSON output: {"groups": [{"group", "error"}]}; "error" appears only for a
group that was not deleted.`,
		Args: argsRange(1, -1, "GROUP"),
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
				ok, err := confirm(cmd, fmt.Sprintf("Delete group(s) %s and their committed offsets?", strings.Join(names, ", ")))
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("not deleted (pass --yes to delete without asking)")
				}
			}
			resps, err := adm.DeleteGroups(ctx, names...)
			if err != nil && len(resps) == 0 {
				return explain("deleting groups", err, "")
			}
			type result struct {
				Group string `json:"group"`
				Error string `json:"error,omitempty"`
			}
			res := struct {
				Groups []result `json:"groups"`
			}{Groups: []result{}}
			rep := newItemReport(cmd, out, "groups", len(names))
			for _, g := range names {
				r, ok := resps[g]
				e := r.Err
				if !ok {
					e = errors.New("no answer from the cluster")
				}
				gr := result{Group: g}
				if e != nil {
					gr.Error = rep.fail(explain(fmt.Sprintf("group %q", g), e, r.ErrMessage))
				} else {
					rep.ok("deleted group %s", g)
				}
				res.Groups = append(res.Groups, gr)
			}
			return rep.finish(res)
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	markNoEnv(cmd.Flags(), "yes")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
