package agent

// Group configs (resource type GROUP in DescribeConfigs and
// IncrementalAlterConfigs, as in Kafka 4): consumer.session.timeout.ms and
// consumer.heartbeat.interval.ms override the agents' consumer-protocol
// defaults for one group, within --group-consumer-{min,max}-* bounds.
// They live in etcd (metadata.AlterGroupConfigs); a group's coordinator
// reads them when it loads the group and again at a heartbeat once they
// are older than groupConfigsMaxAge, so an alter made through any agent
// takes effect within that.

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

// groupConfigsMaxAge bounds how stale a coordinator's copy of a group's
// configs may be.
const groupConfigsMaxAge = 5 * time.Second

// groupTimeouts are a consumer-protocol group's heartbeat interval and
// session timeout, with when they were read.
type groupTimeouts struct {
	heartbeat time.Duration
	session   time.Duration
	read      time.Time
}

// consumerTimeoutsLocked returns the group's heartbeat interval and
// session timeout, reading its configs when the copy is too old. A failed
// read keeps the last values (or the defaults).
func (g *group) consumerTimeoutsLocked() groupTimeouts {
	if time.Since(g.timeouts.read) < groupConfigsMaxAge {
		return g.timeouts
	}
	t := groupTimeouts{heartbeat: g.gc.cfg.ConsumerHeartbeatInterval, session: g.gc.cfg.ConsumerSessionTimeout, read: time.Now()}
	ctx, cancel := g.gc.etcdCtx()
	defer cancel()
	configs, err := g.gc.a.store.GroupConfigs(ctx, g.name)
	if err != nil {
		g.gc.log.Warn("reading group configs failed; keeping the last ones", "group", g.name, "err", err)
		if g.timeouts.read.IsZero() {
			return t
		}
		g.timeouts.read = time.Now()
		return g.timeouts
	}
	if v, err := metadata.ValidateGroupConfig(metadata.GroupConfigConsumerHeartbeatInterval, configs[metadata.GroupConfigConsumerHeartbeatInterval]); err == nil {
		t.heartbeat = millis(v)
	}
	if v, err := metadata.ValidateGroupConfig(metadata.GroupConfigConsumerSessionTimeout, configs[metadata.GroupConfigConsumerSessionTimeout]); err == nil {
		t.session = millis(v)
	}
	g.timeouts = t
	return t
}

// groupConfigDefaults are the agents' values of the group configs.
func (c *GroupConfig) groupConfigDefaults() map[string]string {
	return map[string]string{
		metadata.GroupConfigConsumerHeartbeatInterval: strconv.FormatInt(c.ConsumerHeartbeatInterval.Milliseconds(), 10),
		metadata.GroupConfigConsumerSessionTimeout:    strconv.FormatInt(c.ConsumerSessionTimeout.Milliseconds(), 10),
	}
}

var groupConfigDocs = map[string]string{
	metadata.GroupConfigConsumerHeartbeatInterval: "How often the group's consumer-protocol members heartbeat.",
	metadata.GroupConfigConsumerSessionTimeout:    "How long a consumer-protocol member of the group may go without a heartbeat before it is removed.",
}

// describeGroupConfigs answers DescribeConfigs for a GROUP resource.
func (a *Agent) describeGroupConfigs(ctx context.Context, c *conn, group string, names []string, synonyms, docs bool) ([]describedConfig, error) {
	if !a.authorizedGroup(c, metadata.ACLOpDescribeConfigs, group) {
		return nil, kafkaErrorf(kerr.GroupAuthorizationFailed, "%s may not describe the configs of group %s", c.auth.principal, group)
	}
	if err := metadata.ValidateGroupName(group); err != nil {
		return nil, kafkaErrorf(kerr.InvalidGroupID, "%s", err)
	}
	set, err := a.store.GroupConfigs(ctx, group)
	if err != nil {
		return nil, err
	}
	defaults := a.cfg.Groups.groupConfigDefaults()
	var out []describedConfig
	for _, name := range metadata.GroupConfigNames {
		if len(names) > 0 && !containsFold(names, name) {
			continue
		}
		v, src := defaults[name], metadata.SourceDefault
		if s, ok := set[name]; ok {
			v, src = s, metadata.SourceGroup
		}
		dc := describedConfig{Name: name, Value: &v, Source: int8(src), Type: int8(metadata.ConfigInt)}
		if docs {
			dc.Doc = groupConfigDocs[name]
		}
		if synonyms {
			dc.Synonyms = []configSynonym{{name, v, int8(src)}}
		}
		out = append(out, dc)
	}
	return out, nil
}

// alterGroupConfigs applies IncrementalAlterConfigs to a GROUP resource:
// SET and DELETE, each value within the agents' bounds.
func (a *Agent) alterGroupConfigs(ctx context.Context, c *conn, group string, validateOnly bool, configs []kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	if !a.authorizedGroup(c, metadata.ACLOpAlterConfigs, group) {
		return kafkaErrorf(kerr.GroupAuthorizationFailed, "%s may not alter the configs of group %s", c.auth.principal, group)
	}
	if err := metadata.ValidateGroupName(group); err != nil {
		return kafkaErrorf(kerr.InvalidGroupID, "%s", err)
	}
	change := func(cur map[string]string) (map[string]string, error) {
		for _, rc := range configs {
			switch rc.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				if rc.Value == nil {
					return nil, kafkaErrorf(kerr.InvalidRequest, "SET of %s needs a value", rc.Name)
				}
				if err := a.cfg.Groups.checkGroupConfig(rc.Name, *rc.Value); err != nil {
					return nil, err
				}
				cur[rc.Name] = *rc.Value
			case kmsg.IncrementalAlterConfigOpDelete:
				if _, err := metadata.ValidateGroupConfig(rc.Name, "1"); err != nil {
					return nil, err
				}
				delete(cur, rc.Name)
			default:
				return nil, kafkaErrorf(kerr.InvalidRequest, "%s is not a list config; use SET or DELETE", rc.Name)
			}
		}
		hb, session := a.cfg.Groups.ConsumerHeartbeatInterval, a.cfg.Groups.ConsumerSessionTimeout
		if v, ok := cur[metadata.GroupConfigConsumerHeartbeatInterval]; ok {
			n, _ := strconv.Atoi(v)
			hb = time.Duration(n) * time.Millisecond
		}
		if v, ok := cur[metadata.GroupConfigConsumerSessionTimeout]; ok {
			n, _ := strconv.Atoi(v)
			session = time.Duration(n) * time.Millisecond
		}
		if hb >= session {
			return nil, kafkaErrorf(kerr.InvalidConfig, "group %s: %s (%s) must be below %s (%s)", group, metadata.GroupConfigConsumerHeartbeatInterval, hb, metadata.GroupConfigConsumerSessionTimeout, session)
		}
		return cur, nil
	}
	if validateOnly {
		cur, err := a.store.GroupConfigs(ctx, group)
		if err != nil {
			return err
		}
		_, err = change(cur)
		return err
	}
	if err := a.store.AlterGroupConfigs(ctx, group, change); err != nil {
		return err
	}
	if g := a.groups.loaded(group); g != nil {
		g.mu.Lock()
		g.timeouts.read = time.Time{} // read again at the next heartbeat
		g.mu.Unlock()
	}
	a.log.Info("group configs altered", "group", group)
	return nil
}

// checkGroupConfig checks a group config's value against its bounds.
func (c *GroupConfig) checkGroupConfig(name, value string) error {
	v, err := metadata.ValidateGroupConfig(name, value)
	if err != nil {
		return err
	}
	d := millis(v)
	lo, hi := c.ConsumerMinSessionTimeout, c.ConsumerMaxSessionTimeout
	if name == metadata.GroupConfigConsumerHeartbeatInterval {
		lo, hi = c.ConsumerMinHeartbeatInterval, c.ConsumerMaxHeartbeatInterval
	}
	if d < lo || d > hi {
		return kafkaErrorf(kerr.InvalidConfig, "%s=%s is outside the allowed %d to %d", name, value, lo.Milliseconds(), hi.Milliseconds())
	}
	return nil
}
