package metadata

// Consumer groups in etcd.
//
// Four prefixes hold a group's state, all keyed by the group name
// escaped with url.PathEscape (group names are arbitrary strings; escaping
// keeps '/' out of the key so one group's prefix never covers another's):
//
//	group-owners/<group>             GroupOwner, put under the coordinator
//	                                 agent's registration lease
//	groups/<group>                   GroupState: generation, protocol,
//	                                 leader, members with their metadata
//	                                 and assignments; for a consumer-
//	                                 protocol group, epochs and assignments
//	                                 (consumer_groups.go)
//	offsets/<group>/<topic>/<part>   CommittedOffset
//	group-configs/<group>            the group's configs (group_configs.go)
//
// Ownership. The agent that coordinates a group first claims it: it
// creates the owner key with its registration lease, so the claim vanishes
// with the agent. Every later write to the group's keys compares the owner
// key's create revision with the claim's in the same transaction; a
// coordinator that lost its claim (lease lapsed, group released) can never
// overwrite a newer coordinator's state. The owner key is never updated in
// place, so its create revision names one claim.
//
// Values are JSON with a version field "v". Binary member data (the
// protocol metadata clients send in JoinGroup and the assignments the
// leader sends in SyncGroup) are JSON []byte fields, so they appear
// base64-encoded (standard alphabet, padded) in etcd. Version 1 is the
// only version; readers reject others as corrupt.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	// ErrGroupOwned: another agent holds the group's ownership claim.
	ErrGroupOwned = errors.New("metadata: group is coordinated by another agent")
	// ErrGroupClaimLost: the caller's claim on the group is gone (its lease
	// lapsed or the group was released), so the write was not made.
	ErrGroupClaimLost = errors.New("metadata: group ownership lost")
	// ErrInvalidGroup: the group name cannot be stored.
	ErrInvalidGroup = errors.New("metadata: invalid group name")
)

const (
	prefixGroupOwners = "group-owners/"
	prefixGroups      = "groups/"
	prefixOffsets     = "offsets/"
)

// MaxGroupNameLength bounds group names. Kafka sets no limit; this one
// keeps keys and requests reasonable.
const MaxGroupNameLength = 4096

// Group states, named as Kafka names them.
const (
	GroupEmpty               = "Empty"
	GroupPreparingRebalance  = "PreparingRebalance"
	GroupCompletingRebalance = "CompletingRebalance"
	GroupStable              = "Stable"
	GroupDead                = "Dead"
)

// ValidateGroupName checks that a group name can be stored.
func ValidateGroupName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the group name is empty", ErrInvalidGroup)
	case len(name) > MaxGroupNameLength:
		return fmt.Errorf("%w: the group name is %d bytes long; the limit is %d", ErrInvalidGroup, len(name), MaxGroupNameLength)
	}
	return nil
}

func escapeGroup(name string) string { return url.PathEscape(name) }

func (s *Store) groupOwnerKey(group string) string {
	return s.key(prefixGroupOwners, escapeGroup(group))
}

func (s *Store) groupKey(group string) string { return s.key(prefixGroups, escapeGroup(group)) }

// GroupOwner is the value of a group's owner key.
type GroupOwner struct {
	V       int    `json:"v"`
	NodeID  int32  `json:"node_id"`
	AgentID string `json:"agent_id"`
	Lease   int64  `json:"lease"`
}

// GroupClaim is an agent's ownership of one group. Writes through the
// claim succeed only while it is current.
type GroupClaim struct {
	Group string
	// Rev is the create revision of the owner key this claim wrote.
	Rev int64
	// Lease is the lease the owner key is bound to.
	Lease clientv3.LeaseID
}

func (s *Store) fence(c GroupClaim) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(s.groupOwnerKey(c.Group)), "=", c.Rev)
}

// GroupProtocol is one protocol a member offered in JoinGroup, in the
// member's order of preference.
type GroupProtocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"` // base64 in JSON
}

// GroupMember is one member of a group as persisted.
type GroupMember struct {
	MemberID   string  `json:"id"`
	InstanceID *string `json:"instance_id,omitempty"`
	ClientID   string  `json:"client_id"`
	ClientHost string  `json:"client_host"`
	// SessionTimeoutMs and RebalanceTimeoutMs are the member's JoinGroup
	// timeouts.
	SessionTimeoutMs   int32           `json:"session_timeout_ms"`
	RebalanceTimeoutMs int32           `json:"rebalance_timeout_ms"`
	Protocols          []GroupProtocol `json:"protocols"`
	// Assignment is what the leader assigned the member in the current
	// generation (empty until the group is Stable).
	Assignment []byte `json:"assignment,omitempty"` // base64 in JSON
}

// GroupState is a classic-protocol group as persisted at every state
// transition.
type GroupState struct {
	Name         string        `json:"-"`
	State        string        `json:"state"`
	Generation   int32         `json:"generation"`
	ProtocolType string        `json:"protocol_type,omitempty"`
	Protocol     string        `json:"protocol,omitempty"`
	Leader       string        `json:"leader,omitempty"`
	Members      []GroupMember `json:"members,omitempty"`
	// StateSince is when the group entered State (Unix ms). Committed
	// offsets of an Empty group expire counting from here.
	StateSince int64 `json:"state_since"`
	// Type is GroupTypeConsumer for a consumer-protocol (KIP-848) group,
	// whose state is in Consumer; empty for a classic group.
	Type     string              `json:"type,omitempty"`
	Consumer *ConsumerGroupState `json:"consumer,omitempty"`
	// ModRevision of the group's key (not stored).
	ModRevision int64 `json:"-"`
}

type groupValue struct {
	V int `json:"v"`
	GroupState
}

func (g GroupState) value() string { return encode(groupValue{V: 1, GroupState: g}) }

// DecodeGroupState decodes a group value. It never panics; inconsistent
// values give ErrCorruptValue.
func DecodeGroupState(key, name string, data []byte) (GroupState, error) {
	var v groupValue
	if err := decode(key, data, &v); err != nil {
		return GroupState{}, err
	}
	g := v.GroupState
	g.Name = name
	if v.V != 1 {
		return GroupState{}, fmt.Errorf("%w: %s: version %d (this agent reads version 1)", ErrCorruptValue, key, v.V)
	}
	switch g.Type {
	case "":
		if g.Consumer != nil {
			return GroupState{}, fmt.Errorf("%w: %s: classic group with consumer-protocol state", ErrCorruptValue, key)
		}
	case GroupTypeConsumer:
		if g.Consumer == nil || len(g.Members) > 0 {
			return GroupState{}, fmt.Errorf("%w: %s: consumer-protocol group without its state or with classic members", ErrCorruptValue, key)
		}
		if err := g.Consumer.validate(key, g.State); err != nil {
			return GroupState{}, err
		}
		return g, nil
	default:
		return GroupState{}, fmt.Errorf("%w: %s: group type %q", ErrCorruptValue, key, g.Type)
	}
	switch g.State {
	case GroupEmpty, GroupPreparingRebalance, GroupCompletingRebalance, GroupStable:
	default:
		return GroupState{}, fmt.Errorf("%w: %s: state %q", ErrCorruptValue, key, g.State)
	}
	if g.Generation < 0 {
		return GroupState{}, fmt.Errorf("%w: %s: generation %d", ErrCorruptValue, key, g.Generation)
	}
	seen := make(map[string]bool, len(g.Members))
	for _, m := range g.Members {
		if m.MemberID == "" || seen[m.MemberID] || m.SessionTimeoutMs <= 0 || m.RebalanceTimeoutMs <= 0 || len(m.Protocols) == 0 {
			return GroupState{}, fmt.Errorf("%w: %s: member %q", ErrCorruptValue, key, m.MemberID)
		}
		seen[m.MemberID] = true
	}
	if g.State == GroupEmpty && len(g.Members) > 0 {
		return GroupState{}, fmt.Errorf("%w: %s: empty group with %d members", ErrCorruptValue, key, len(g.Members))
	}
	return g, nil
}

// ClaimGroup takes ownership of group for the agent owner, binding the
// claim to lease, and returns the claim with the group's stored state
// (found is false when nothing is stored yet). If the agent already holds
// the claim under the same lease, that claim is returned. If another agent
// holds it, the error wraps ErrGroupOwned.
func (s *Store) ClaimGroup(ctx context.Context, group string, owner GroupOwner, lease clientv3.LeaseID) (claim GroupClaim, st GroupState, found bool, err error) {
	if err := ValidateGroupName(group); err != nil {
		return GroupClaim{}, GroupState{}, false, err
	}
	owner.V = 1
	owner.Lease = int64(lease)
	okey, gkey := s.groupOwnerKey(group), s.groupKey(group)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(okey), "=", 0)).
		Then(clientv3.OpPut(okey, encode(owner), clientv3.WithLease(lease)), clientv3.OpGet(gkey)).
		Else(clientv3.OpGet(okey), clientv3.OpGet(gkey)).
		Commit()
	if err != nil {
		return GroupClaim{}, GroupState{}, false, fmt.Errorf("claiming group %q: %w", group, err)
	}
	claim = GroupClaim{Group: group, Rev: resp.Header.Revision, Lease: lease}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return GroupClaim{}, GroupState{}, false, fmt.Errorf("claiming group %q: %w", group, ErrConflict)
		}
		var held GroupOwner
		if err := decode(okey, kvs[0].Value, &held); err != nil {
			return GroupClaim{}, GroupState{}, false, err
		}
		if held.AgentID != owner.AgentID || held.Lease != int64(lease) || kvs[0].Lease != int64(lease) {
			return GroupClaim{}, GroupState{}, false, fmt.Errorf("%w: group %q is held by node %d", ErrGroupOwned, group, held.NodeID)
		}
		claim.Rev = kvs[0].CreateRevision
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return claim, GroupState{Name: group, State: GroupEmpty}, false, nil
	}
	st, err = DecodeGroupState(gkey, group, kvs[0].Value)
	if err != nil {
		return GroupClaim{}, GroupState{}, false, err
	}
	st.ModRevision = kvs[0].ModRevision
	return claim, st, true, nil
}

// ReleaseGroup gives up a claim, so another agent can claim the group at
// once. Releasing a claim that is already gone is not an error.
func (s *Store) ReleaseGroup(ctx context.Context, c GroupClaim) error {
	okey := s.groupOwnerKey(c.Group)
	_, err := s.cli.Txn(ctx).
		If(s.fence(c)).
		Then(clientv3.OpDelete(okey)).
		Commit()
	if err != nil {
		return fmt.Errorf("releasing group %q: %w", c.Group, err)
	}
	return nil
}

func (s *Store) fencedTxn(ctx context.Context, c GroupClaim, what string, ops ...clientv3.Op) (int64, error) {
	resp, err := s.cli.Txn(ctx).If(s.fence(c)).Then(ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("%s of group %q: %w", what, c.Group, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%s of group %q: %w", what, c.Group, ErrGroupClaimLost)
	}
	return resp.Header.Revision, nil
}

// SaveGroup writes the group's state through the claim and returns the
// revision written.
func (s *Store) SaveGroup(ctx context.Context, c GroupClaim, st GroupState) (int64, error) {
	return s.fencedTxn(ctx, c, "saving state", clientv3.OpPut(s.groupKey(c.Group), st.value()))
}

// DeleteGroup removes the group's state, its committed offsets, its
// configs and the claim itself, through the claim.
func (s *Store) DeleteGroup(ctx context.Context, c GroupClaim) error {
	_, err := s.fencedTxn(ctx, c, "deleting",
		clientv3.OpDelete(s.groupKey(c.Group)),
		clientv3.OpDelete(s.offsetsPrefix(c.Group), clientv3.WithPrefix()),
		clientv3.OpDelete(s.groupOwnerKey(c.Group)),
		clientv3.OpDelete(s.groupConfigsKey(c.Group)),
	)
	return err
}

// GetGroup reads a group's state straight from etcd.
func (s *Store) GetGroup(ctx context.Context, group string) (GroupState, bool, error) {
	if err := ValidateGroupName(group); err != nil {
		return GroupState{}, false, err
	}
	key := s.groupKey(group)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return GroupState{}, false, fmt.Errorf("reading group %q: %w", group, err)
	}
	if len(resp.Kvs) == 0 {
		return GroupState{Name: group, State: GroupDead}, false, nil
	}
	st, err := DecodeGroupState(key, group, resp.Kvs[0].Value)
	if err != nil {
		return GroupState{}, false, err
	}
	st.ModRevision = resp.Kvs[0].ModRevision
	return st, true, nil
}

// ListGroups reads every stored group. Undecodable groups are returned in
// bad so callers can log them; they do not fail the listing.
func (s *Store) ListGroups(ctx context.Context) (groups []GroupState, bad []error, err error) {
	prefix := s.key(prefixGroups)
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, nil, fmt.Errorf("listing groups: %w", err)
	}
	for _, kv := range resp.Kvs {
		name, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), prefix))
		if err != nil {
			bad = append(bad, fmt.Errorf("%w: %s: %v", ErrCorruptValue, kv.Key, err))
			continue
		}
		st, err := DecodeGroupState(string(kv.Key), name, kv.Value)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		st.ModRevision = kv.ModRevision
		groups = append(groups, st)
	}
	return groups, bad, nil
}

// ListGroupNames returns the names of groups that have stored state or
// committed offsets, without decoding them.
func (s *Store) ListGroupNames(ctx context.Context) ([]string, error) {
	names := map[string]bool{}
	for _, prefix := range []string{s.key(prefixGroups), s.key(prefixOffsets)} {
		resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return nil, fmt.Errorf("listing groups: %w", err)
		}
		for _, kv := range resp.Kvs {
			esc, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), prefix), "/")
			if name, err := url.PathUnescape(esc); err == nil {
				names[name] = true
			}
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}
