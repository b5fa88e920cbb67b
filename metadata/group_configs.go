package metadata

// Group configs (KIP-848's dynamic group configs, resource type GROUP).
//
//	group-configs/<group>  {"v":1,"configs":{"consumer.session.timeout.ms":"50000",…}}
//
// The group name is escaped as for groups/<group>. The value holds only
// the configs set for the group; the rest take the agents' defaults.
// Writes are compare-and-swap on the key's mod revision, so concurrent
// alters never lose each other's changes.

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const prefixGroupConfigs = "group-configs/"

// Group configs floe knows.
const (
	GroupConfigConsumerSessionTimeout    = "consumer.session.timeout.ms"
	GroupConfigConsumerHeartbeatInterval = "consumer.heartbeat.interval.ms"
)

// GroupConfigNames are the group configs, sorted.
var GroupConfigNames = []string{GroupConfigConsumerHeartbeatInterval, GroupConfigConsumerSessionTimeout}

// ValidateGroupConfig checks that name is a group config and value parses
// as its type (positive milliseconds). Bounds are the agents' to check.
func ValidateGroupConfig(name, value string) (int32, error) {
	switch name {
	case GroupConfigConsumerSessionTimeout, GroupConfigConsumerHeartbeatInterval:
	default:
		return 0, fmt.Errorf("%w: unknown group config %q (floe has %v)", ErrInvalidConfig, name, GroupConfigNames)
	}
	v, err := strconv.ParseInt(value, 10, 32)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%w: %s=%q: want a positive number of milliseconds", ErrInvalidConfig, name, value)
	}
	return int32(v), nil
}

func (s *Store) groupConfigsKey(group string) string {
	return s.key(prefixGroupConfigs, escapeGroup(group))
}

type groupConfigsValue struct {
	V       int               `json:"v"`
	Configs map[string]string `json:"configs"`
}

// GroupConfigs reads the configs set for group (empty when none are).
func (s *Store) GroupConfigs(ctx context.Context, group string) (map[string]string, error) {
	configs, _, err := s.groupConfigs(ctx, group)
	return configs, err
}

func (s *Store) groupConfigs(ctx context.Context, group string) (map[string]string, int64, error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, 0, err
	}
	key := s.groupConfigsKey(group)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("reading configs of group %q: %w", group, err)
	}
	if len(resp.Kvs) == 0 {
		return map[string]string{}, 0, nil
	}
	var v groupConfigsValue
	if err := decode(key, resp.Kvs[0].Value, &v); err != nil {
		return nil, 0, err
	}
	if v.V != 1 {
		return nil, 0, fmt.Errorf("%w: %s: version %d (this agent reads version 1)", ErrCorruptValue, key, v.V)
	}
	if v.Configs == nil {
		v.Configs = map[string]string{}
	}
	return v.Configs, resp.Kvs[0].ModRevision, nil
}

// AlterGroupConfigs applies change to group's configs in one
// compare-and-swap, retrying when another alter got there first. change
// gets a copy it may modify; its error aborts the alter. An empty result
// deletes the key.
func (s *Store) AlterGroupConfigs(ctx context.Context, group string, change func(map[string]string) (map[string]string, error)) error {
	key := s.groupConfigsKey(group)
	for range 16 {
		cur, rev, err := s.groupConfigs(ctx, group)
		if err != nil {
			return err
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		for name, value := range next {
			if _, err := ValidateGroupConfig(name, value); err != nil {
				return err
			}
		}
		op := clientv3.OpDelete(key)
		if len(next) > 0 {
			op = clientv3.OpPut(key, encode(groupConfigsValue{V: 1, Configs: next}))
		}
		resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(op).Commit()
		if err != nil {
			return fmt.Errorf("altering configs of group %q: %w", group, err)
		}
		if resp.Succeeded {
			return nil
		}
	}
	return fmt.Errorf("altering configs of group %q: %w", group, ErrConflict)
}
