package agent

// DescribeConfigs, v0–v4.
//
// Topic resources list every topic config Kafka defines with its
// effective value and source: the topic's override (DYNAMIC_TOPIC_CONFIG),
// the agent's broker default set by flag (STATIC_BROKER_CONFIG), or
// Kafka's default (DEFAULT_CONFIG); synonyms (v1+) show the chain, ending
// with the broker-level config and its default where Kafka has one, and
// v3+ adds types and documentation (what the config does in floe). Broker
// resources (the agent's node ID, or "" for cluster defaults) list the
// broker-level settings, which are set by flags and are read-only. Group
// resources list the group configs (group_configs.go): the group's value
// (GROUP_CONFIG) or the agents' default. Other resource types get
// INVALID_REQUEST.

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 32, min: 0, max: 4, serve: handleSync((*Agent).handleDescribeConfigs)})
}

// describedConfig is one config entry as DescribeConfigs, CreateTopics and
// the command line report it.
type describedConfig struct {
	Name        string
	Value       *string
	ReadOnly    bool
	Source      int8
	IsSensitive bool
	Type        int8
	Doc         string
	Synonyms    []configSynonym
}

type configSynonym struct {
	Name   string
	Value  string
	Source int8
}

func (a *Agent) handleDescribeConfigs(ctx context.Context, rq *request, req *kmsg.DescribeConfigsRequest) (*kmsg.DescribeConfigsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		var (
			configs []describedConfig
			err     error
		)
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			var t metadata.Topic
			if !a.authorizedTopic(rq.conn, metadata.ACLOpDescribeConfigs, rr.ResourceName) {
				err = kafkaErrorf(kerr.TopicAuthorizationFailed, "%s may not describe the configs of topic %s", rq.conn.auth.principal, rr.ResourceName)
				break
			}
			t, err = a.lookupTopic(ctx, rr.ResourceName)
			if err == nil {
				configs = a.describeTopicConfigs(t.Configs, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			}
		case kmsg.ConfigResourceTypeBroker:
			if !a.authorizedCluster(rq.conn, metadata.ACLOpDescribeConfigs) {
				err = kafkaErrorf(kerr.ClusterAuthorizationFailed, "%s may not describe broker configs", rq.conn.auth.principal)
				break
			}
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(a.NodeID())) {
				if id, perr := strconv.Atoi(rr.ResourceName); perr != nil {
					err = kafkaErrorf(kerr.InvalidRequest, "broker resource name %q is not a node ID", rr.ResourceName)
				} else if _, ok := a.view.Agent(int32(id)); !ok {
					err = kafkaErrorf(kerr.InvalidRequest, "no live agent has node ID %d", id)
				}
			}
			if err == nil {
				configs = a.describeBrokerConfigs(rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			}
		case kmsg.ConfigResourceTypeGroupConfig:
			configs, err = a.describeGroupConfigs(ctx, rq.conn, rr.ResourceName, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		default:
			err = kafkaErrorf(kerr.InvalidRequest, "floe describes topic, broker and group configs only (resource type %d asked)", rr.ResourceType)
		}
		if err != nil {
			ke, msg := kafkaError(err)
			sr.ErrorCode = ke.Code
			sr.ErrorMessage = errMessage(msg)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		for _, c := range configs {
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name = c.Name
			rc.Value = c.Value
			rc.ReadOnly = c.ReadOnly
			rc.Source = kmsg.ConfigSource(c.Source)
			rc.IsDefault = c.Source == int8(metadata.SourceDefault)
			rc.IsSensitive = c.IsSensitive
			rc.ConfigType = kmsg.ConfigType(c.Type)
			if req.IncludeDocumentation && c.Doc != "" {
				doc := c.Doc
				rc.Documentation = &doc
			}
			for _, s := range c.Synonyms {
				rs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				rs.Name = s.Name
				v := s.Value
				rs.Value = &v
				rs.Source = kmsg.ConfigSource(s.Source)
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, rs)
			}
			sr.Configs = append(sr.Configs, rc)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// describeTopicConfigs resolves a topic's configs. names filters (nil or
// empty: all).
func (a *Agent) describeTopicConfigs(overrides map[string]string, names []string, synonyms, docs bool) []describedConfig {
	var out []describedConfig
	for _, def := range metadata.TopicConfigDefs {
		if len(names) > 0 && !slices.Contains(names, def.Name) {
			continue
		}
		rc := a.cfg.Broker.Resolve(overrides, def)
		v := rc.Value
		c := describedConfig{Name: def.Name, Value: &v, Source: int8(rc.Source), Type: int8(def.Type)}
		if docs {
			c.Doc = def.Doc
		}
		if synonyms {
			if ov, ok := overrides[def.Name]; ok {
				c.Synonyms = append(c.Synonyms, configSynonym{def.Name, ov, int8(metadata.SourceTopicOverride)})
			}
			if def.BrokerName != "" {
				if bv, ok := a.cfg.Broker[def.BrokerName]; ok && bv != def.Default {
					c.Synonyms = append(c.Synonyms, configSynonym{def.BrokerName, bv, int8(metadata.SourceBrokerStatic)})
				}
				c.Synonyms = append(c.Synonyms, configSynonym{def.BrokerName, def.Default, int8(metadata.SourceDefault)})
			}
		}
		out = append(out, c)
	}
	return out
}

// brokerConfigDef is a broker-level setting reported by DescribeConfigs.
type brokerConfigDef struct {
	typ metadata.ConfigType
	def string
	doc string
}

// brokerSettings returns every broker-level setting with its value and
// whether a flag set it.
func (a *Agent) brokerSettings() map[string]describedConfig {
	defs := map[string]brokerConfigDef{
		"num.partitions":             {metadata.ConfigInt, "1", "Partitions of auto-created topics and of CreateTopics requests that ask for -1."},
		"default.replication.factor": {metadata.ConfigInt, "1", "Replication factor reported for topics created with -1. Durability comes from the object store and etcd."},
		"auto.create.topics.enable":  {metadata.ConfigBoolean, "true", "Whether unknown topics are created on first use."},
	}
	for _, d := range metadata.TopicConfigDefs {
		if d.BrokerName != "" {
			defs[d.BrokerName] = brokerConfigDef{d.Type, d.Default, d.Doc}
		}
	}
	values := maps.Clone(a.cfg.Broker)
	values["num.partitions"] = strconv.Itoa(int(a.cfg.DefaultPartitions))
	values["default.replication.factor"] = strconv.Itoa(int(a.cfg.DefaultReplicationFactor))
	values["auto.create.topics.enable"] = strconv.FormatBool(a.cfg.AutoCreateTopics)
	out := map[string]describedConfig{}
	for name, d := range defs {
		v, set := values[name]
		src := metadata.SourceDefault
		if set && v != d.def {
			src = metadata.SourceBrokerStatic
		} else {
			v = d.def
		}
		out[name] = describedConfig{Name: name, Value: &v, ReadOnly: true, Source: int8(src), Type: int8(d.typ), Doc: d.doc}
	}
	return out
}

func (a *Agent) describeBrokerConfigs(names []string, synonyms, docs bool) []describedConfig {
	all := a.brokerSettings()
	var out []describedConfig
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if len(names) > 0 && !slices.Contains(names, name) {
			continue
		}
		c := all[name]
		if !docs {
			c.Doc = ""
		}
		if synonyms {
			c.Synonyms = []configSynonym{{name, *c.Value, c.Source}}
		}
		out = append(out, c)
	}
	return out
}
