package agent

// The lag API: GET /v1/groups and GET /v1/groups/{group}, JSON, served
// by every agent for every group (docs/http-api.md is the reference; the
// response types are package internal/lagapi).
//
// A group's state, members and committed offsets come from etcd (the
// list reads offsets from the agent's watched copy, milliseconds behind
// etcd); high watermarks and log start offsets from the agent's watched
// watermarks; the status from the commit windows in lag.go. Lag follows
// the rules `floe lag` and kadm use: the high watermark minus the
// committed offset (never below 0); a partition assigned to a member
// with no commit yet counts from the log start offset; offsets committed
// to topics that are gone are left out.
//
// Members and who owns each partition come from the group's type. A
// classic group's are decoded from the assignments its leader sent
// (ConsumerMemberAssignment), only while it is Stable, as DescribeGroups
// reports them. A consumer-protocol (KIP-848) group's are its members'
// current assignments (metadata.ConsumerMember.Assigned), in every state,
// as ConsumerGroupDescribe reports them: the coordinator persists them
// before a member hears of a change. Those name topics by ID; the report
// names them by the agent's view, leaving out topics deleted since.

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/lagapi"
	"github.com/floe-io/floe/metadata"
)

// registerGroupsHTTP adds the lag API to mux.
func (a *Agent) registerGroupsHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/groups", a.serveGroupList)
	mux.HandleFunc("GET /v1/groups/{group}", a.serveGroup)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// lagReady reports whether the agent has started (the atomic flags order
// Start's writes before the handler's reads).
func (a *Agent) lagReady(w http.ResponseWriter) bool {
	if !a.ready.Load() && !a.draining.Load() {
		writeJSONError(w, http.StatusServiceUnavailable, "the agent is starting")
		return false
	}
	return true
}

func (a *Agent) serveGroup(w http.ResponseWriter, r *http.Request) {
	if !a.lagReady(w) {
		return
	}
	name := r.PathValue("group")
	if err := metadata.ValidateGroupName(name); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, found, err := a.store.GetGroup(ctx, name)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	offsets, _, err := a.store.FetchOffsets(ctx, name)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !found && len(offsets) == 0 {
		writeJSONError(w, http.StatusNotFound, "group "+strconv.Quote(name)+" does not exist: it has no stored state and no committed offsets")
		return
	}
	if !found {
		st = metadata.GroupState{Name: name, State: metadata.GroupEmpty}
	}
	writeJSON(w, http.StatusOK, a.groupReport(st, offsets, time.Now()))
}

func (a *Agent) serveGroupList(w http.ResponseWriter, r *http.Request) {
	if !a.lagReady(w) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	states, bad, err := a.store.ListGroups(ctx)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	for _, e := range bad {
		a.log.Error("ignoring undecodable group", "err", e)
	}
	byName := map[string]metadata.GroupState{}
	for _, st := range states {
		byName[st.Name] = st
	}
	for _, name := range a.lag.groups() {
		if _, ok := byName[name]; !ok {
			byName[name] = metadata.GroupState{Name: name, State: metadata.GroupEmpty}
		}
	}
	now := time.Now()
	out := struct {
		Groups []lagapi.GroupSummary `json:"groups"`
	}{Groups: []lagapi.GroupSummary{}}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		st := byName[name]
		var offsets []metadata.CommittedOffset
		for _, cw := range a.lag.groupWindows(name) {
			offsets = append(offsets, cw.latest)
		}
		rep := a.groupReport(st, offsets, now)
		out.Groups = append(out.Groups, lagapi.GroupSummary{
			Group: rep.Group, Type: rep.Type, State: rep.State, ProtocolType: rep.ProtocolType,
			Members: len(rep.Members), Coordinator: rep.Coordinator, Partitions: len(rep.Partitions),
			TotalLag: rep.TotalLag, MaxLag: rep.MaxLag, Status: rep.Status,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// groupReport computes a group's lag and status from its state and
// committed offsets.
func (a *Agent) groupReport(st metadata.GroupState, offsets []metadata.CommittedOffset, now time.Time) lagapi.GroupReport {
	rep := lagapi.GroupReport{
		Group: st.Name, Type: groupType(st.Type), State: st.State, ProtocolType: st.ProtocolType, Protocol: st.Protocol,
		Generation: st.Generation, Members: []lagapi.MemberReport{}, Partitions: []lagapi.PartitionReport{},
		Window: lagapi.WindowReport{Commits: a.cfg.Groups.LagWindow, MinDistanceMs: a.cfg.Groups.LagMinDistance.Milliseconds()},
	}
	if c, ok := metadata.Leader(a.liveAgents(), metadata.GroupKey(st.Name)); ok {
		rep.Coordinator = c.NodeID
	}
	if g := a.groups.loaded(st.Name); g != nil {
		// The coordinator's live state, as ListGroups reports it.
		g.mu.Lock()
		if !g.gone && g.loaded {
			rep.State = g.state
		}
		g.mu.Unlock()
	}

	// owner is the member each partition is assigned to.
	owner := map[topicPartition]string{}
	if cg := st.Consumer; st.Type == metadata.GroupTypeConsumer && cg != nil {
		rep.Epoch, rep.AssignmentEpoch, rep.Assignor = &cg.Epoch, &cg.AssignmentEpoch, cg.Assignor
		for _, m := range cg.Members {
			mr := lagapi.MemberReport{
				MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, MemberEpoch: &m.Epoch,
				Assignments: a.namedPartitions(m.Assigned), TargetAssignments: a.namedPartitions(m.Target),
			}
			for _, tp := range mr.Assignments {
				for _, p := range tp.Partitions {
					owner[topicPartition{tp.Topic, p}] = m.MemberID
				}
			}
			rep.Members = append(rep.Members, mr)
		}
	} else {
		for _, m := range st.Members {
			mr := lagapi.MemberReport{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assignments: []lagapi.TopicPartitions{}}
			if st.ProtocolType == consumerProtocolType && st.State == metadata.GroupStable && len(m.Assignment) > 0 {
				var ca kmsg.ConsumerMemberAssignment
				if ca.ReadFrom(m.Assignment) == nil {
					for _, t := range ca.Topics {
						ps := slices.Clone(t.Partitions)
						slices.Sort(ps)
						mr.Assignments = append(mr.Assignments, lagapi.TopicPartitions{Topic: t.Topic, Partitions: ps})
						for _, p := range ps {
							owner[topicPartition{t.Topic, p}] = m.MemberID
						}
					}
					sortByTopic(mr.Assignments)
				}
			}
			rep.Members = append(rep.Members, mr)
		}
	}

	windows := a.lag.groupWindows(st.Name)
	committed := map[topicPartition]bool{}
	var statuses []string
	full := 0
	add := func(pr lagapi.PartitionReport) {
		pr.Commits = []lagapi.Sample{}
		if w, ok := windows[topicPartition{pr.Topic, pr.Partition}]; ok && pr.CommittedOffset != nil {
			pr.Commits = w.samples
		}
		pr.Status = partitionStatus(pr.Commits, pr.Lag, now)
		if len(pr.Commits) >= a.cfg.Groups.LagWindow {
			full++
		}
		statuses = append(statuses, pr.Status)
		rep.TotalLag += pr.Lag
		if rep.MaxLagPartition == nil || pr.Lag > rep.MaxLag {
			rep.MaxLag = pr.Lag
			rep.MaxLagPartition = &lagapi.TopicPartitionID{Topic: pr.Topic, Partition: pr.Partition}
		}
		rep.Partitions = append(rep.Partitions, pr)
	}
	for _, o := range offsets {
		t, ok := a.currentTopic(o)
		if !ok {
			continue
		}
		tp := topicPartition{o.Topic, o.Partition}
		committed[tp] = true
		m := a.watermarks(t, o.Partition)
		off, at := o.Offset, o.Committed
		add(lagapi.PartitionReport{
			Topic: o.Topic, Partition: o.Partition, CommittedOffset: &off, CommittedAt: &at, Metadata: o.Metadata,
			StartOffset: m.Start, EndOffset: m.Next, Lag: max(0, m.Next-o.Offset), MemberID: owner[tp],
		})
	}
	for tp, member := range owner {
		if committed[tp] {
			continue
		}
		t, ok := a.view.Topic(tp.topic)
		if !ok || tp.partition < 0 || tp.partition >= t.Partitions {
			continue
		}
		m := a.watermarks(t, tp.partition)
		add(lagapi.PartitionReport{
			Topic: tp.topic, Partition: tp.partition,
			StartOffset: m.Start, EndOffset: m.Next, Lag: max(0, m.Next-m.Start), MemberID: member,
		})
	}
	sortPartitions(rep.Partitions)
	rep.Status = groupStatus(statuses)
	if len(rep.Partitions) > 0 {
		rep.Complete = float64(full) / float64(len(rep.Partitions))
	}
	return rep
}

// namedPartitions names a consumer-protocol member's partitions by topic
// as the agent's view names each topic ID, sorted by topic, leaving out
// topics that are gone. It is never nil.
func (a *Agent) namedPartitions(tps []metadata.TopicPartitions) []lagapi.TopicPartitions {
	out := []lagapi.TopicPartitions{}
	for _, tp := range tps {
		t, ok := a.view.TopicByID(tp.Topic)
		if !ok || len(tp.Partitions) == 0 {
			continue
		}
		ps := slices.Clone(tp.Partitions)
		slices.Sort(ps)
		out = append(out, lagapi.TopicPartitions{Topic: t.Name, Partitions: ps})
	}
	sortByTopic(out)
	return out
}

func sortByTopic(tps []lagapi.TopicPartitions) {
	slices.SortFunc(tps, func(x, y lagapi.TopicPartitions) int { return cmp.Compare(x.Topic, y.Topic) })
}
