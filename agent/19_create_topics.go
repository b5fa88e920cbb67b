package agent

// CreateTopics, v0–v7.
//
// Names are validated as Kafka does; a partition count or replication
// factor of -1 takes the agent's default (num.partitions,
// default.replication.factor). Any replication factor from 1 to 32 is
// accepted whatever the number of agents, because durability comes from
// the object store and etcd, not from copies on agents. Manual replica
// assignments are accepted for their partition count; the broker IDs in
// them are ignored. Topic configs are validated; unknown keys get
// INVALID_CONFIG naming the key. ValidateOnly checks without creating.
// v5+ responses describe the new topic's configs.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 19, min: 0, max: 7, serve: handleSync((*Agent).handleCreateTopics)})
}

func (a *Agent) handleCreateTopics(ctx context.Context, rq *request, req *kmsg.CreateTopicsRequest) (*kmsg.CreateTopicsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions = -1
		st.ReplicationFactor = -1
		fail := func(err error) {
			ke, msg := kafkaError(err)
			st.ErrorCode = ke.Code
			st.ErrorMessage = errMessage(msg)
			resp.Topics = append(resp.Topics, st)
		}
		if !a.mayCreateTopic(rq.conn, rt.Topic) {
			fail(kafkaErrorf(kerr.TopicAuthorizationFailed, "%s may not create topic %s (needs CREATE on the cluster or the topic)", rq.conn.auth.principal, rt.Topic))
			continue
		}
		if seen[rt.Topic] > 1 {
			fail(kafkaErrorf(kerr.InvalidRequest, "topic %s appears more than once in the request", rt.Topic))
			continue
		}
		spec := metadata.TopicSpec{
			Name:              rt.Topic,
			Partitions:        rt.NumPartitions,
			ReplicationFactor: rt.ReplicationFactor,
			Configs:           map[string]string{},
		}
		if len(rt.ReplicaAssignment) > 0 {
			if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
				fail(kafkaErrorf(kerr.InvalidRequest, "topic %s: give either a replica assignment or a partition count and replication factor, not both", rt.Topic))
				continue
			}
			spec.Partitions = int32(len(rt.ReplicaAssignment))
			spec.ReplicationFactor = int16(len(rt.ReplicaAssignment[0].Replicas))
		}
		if spec.Partitions == -1 {
			spec.Partitions = a.cfg.DefaultPartitions
		}
		if spec.ReplicationFactor == -1 {
			spec.ReplicationFactor = a.cfg.DefaultReplicationFactor
		}
		for _, c := range rt.Configs {
			if c.Value == nil {
				continue // null means "use the default"
			}
			spec.Configs[c.Name] = *c.Value
		}
		if err := spec.Validate(); err != nil {
			fail(err)
			continue
		}
		if err := a.checkTopicCollision(spec.Name); err != nil {
			fail(err)
			continue
		}
		var t metadata.Topic
		if req.ValidateOnly {
			if _, err := a.lookupTopic(ctx, spec.Name); err == nil {
				fail(metadata.ErrTopicExists)
				continue
			}
			t = metadata.Topic{Name: spec.Name, Partitions: spec.Partitions, ReplicationFactor: spec.ReplicationFactor, Configs: spec.Configs}
		} else {
			var err error
			t, err = a.createTopic(ctx, spec)
			if err != nil {
				fail(err)
				continue
			}
		}
		st.TopicID = t.ID
		st.NumPartitions = t.Partitions
		st.ReplicationFactor = t.ReplicationFactor
		for _, rc := range a.describeTopicConfigs(t.Configs, nil, false, false) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name = rc.Name
			c.Value = rc.Value
			c.ReadOnly = rc.ReadOnly
			c.Source = rc.Source
			c.IsSensitive = rc.IsSensitive
			st.Configs = append(st.Configs, c)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
