package agent

// Metadata, v0–v13.
//
// Live agents are listed as brokers (node ID, advertised host and port,
// zone as rack). Each shard's leader (the leader of all its
// partitions: metadata/shards.go) is chosen among live agents by
// rendezvous hashing (metadata.Rank), so it is stable while agents come
// and go and moves only when its agent's lease lapses. One agent then
// writes a shard, and its commits rarely conflict with another's. Replicas and
// ISR list the best-ranked agents up to the topic's replication factor;
// durability does not depend on them (data is in the object store and
// etcd). Leader epochs are reported as -1: floe has no log truncation, so
// clients need not validate epochs.
//
// Replicas after the leader come from zones not yet listed first, as
// Kafka places replicas across racks, so a rack-aware consumer finds one
// in its zone when the replication factor reaches the zones' count.
//
// A client in a zone (zones.go) is told the leaders of its zone instead:
// the same rendezvous hashing among the live agents of its zone, falling
// back to all agents when its zone has none alive. Any agent accepts any
// produce or fetch, so each zone's clients write and read through their
// own zone's agents. Only its zone's agents are listed as brokers, so the
// requests a client sends to any broker it knows (metadata refreshes,
// producer IDs) stay in the zone too; replicas in other zones are listed
// by node ID only, as Kafka lists offline replicas. A zone down to one
// live agent lists every agent: a client must know a broker that outlives
// its zone's last one.
//
// Topics are auto-created here when the agent allows it and the request
// does (v4+; always for v0–v3, as Kafka).

import (
	"context"
	"slices"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 3, min: 0, max: 13, serve: handleSync((*Agent).handleMetadata)})
}

// authorizedOpsUnset is Kafka's "not requested" value for authorized
// operations fields.
const authorizedOpsUnset = -2147483648

func (a *Agent) handleMetadata(ctx context.Context, rq *request, req *kmsg.MetadataRequest) (*kmsg.MetadataResponse, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	agents := a.liveAgents()
	brokers := agentsForZone(agents, rq.zone)
	if len(brokers) < 2 {
		// A zone down to one agent: the client also learns the others,
		// so that it still knows a live broker when that one goes.
		brokers = agents
	}
	for _, ag := range brokers {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID = ag.NodeID
		b.Host, b.Port = ag.Endpoint(rq.conn.lst.cfg.Protocol)
		if ag.Zone != "" {
			zone := ag.Zone
			b.Rack = &zone
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	clusterID := a.cluster.ID
	resp.ClusterID = &clusterID
	resp.ControllerID = brokers[0].NodeID
	resp.AuthorizedOperations = authorizedOpsUnset

	allowAuto := a.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)

	var topics []metadata.Topic
	allTopics := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	if allTopics {
		topics = a.view.Topics()
		for _, t := range topics {
			// Listing every topic shows only those the principal may
			// describe, as Kafka does.
			if !a.authorizedTopic(rq.conn, metadata.ACLOpDescribe, t.Name) {
				continue
			}
			resp.Topics = append(resp.Topics, a.metadataTopic(req.Version, t, agents, rq.zone))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		var (
			t   metadata.Topic
			err error
		)
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			t, err = a.lookupTopic(ctx, *rt.Topic)
			if isUnknownTopic(err) && allowAuto && metadata.ValidateTopicName(*rt.Topic) == nil && a.mayCreateTopic(rq.conn, *rt.Topic) {
				t, err = a.autoCreateTopic(ctx, *rt.Topic)
			}
		case rt.TopicID != [16]byte{}:
			t, err = a.lookupTopicByID(ctx, uuid.UUID(rt.TopicID))
			if isUnknownTopic(err) {
				err = kerr.UnknownTopicID
			}
		default:
			err = kerr.InvalidTopicException
		}
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.TopicID = rt.TopicID
			mt.AuthorizedOperations = authorizedOpsUnset
			if rt.Topic != nil {
				if nerr := metadata.ValidateTopicName(*rt.Topic); nerr != nil {
					err = nerr
				}
			}
			ke, _ := kafkaError(err)
			mt.ErrorCode = ke.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if !a.authorizedTopic(rq.conn, metadata.ACLOpDescribe, t.Name) {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.TopicID = rt.TopicID
			mt.AuthorizedOperations = authorizedOpsUnset
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, a.metadataTopic(req.Version, t, agents, rq.zone))
	}
	return resp, nil
}

func (a *Agent) metadataTopic(version int16, t metadata.Topic, agents []metadata.AgentInfo, zone string) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal()
	mt.AuthorizedOperations = authorizedOpsUnset
	replicas := int(t.ReplicationFactor)
	replicas = max(1, min(replicas, len(agents)))
	// A zoned client's leaders (and first replicas) are agents of its
	// zone; the others follow.
	inZone := agentsForZone(agents, zone)
	var outZone []metadata.AgentInfo
	if len(inZone) < len(agents) {
		outZone = slices.DeleteFunc(slices.Clone(agents), func(ag metadata.AgentInfo) bool { return ag.Zone == zone })
	}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, t.Partitions)
	// Partitions of a shard share their leader (and replica list): the
	// ranking is computed once per shard.
	var replicaIDs []int32
	for p := int32(0); p < t.Partitions; p++ {
		if p%t.ShardSize == 0 {
			key := metadata.PartitionKey(t.Name, p/t.ShardSize)
			var ranked []metadata.AgentInfo
			if len(inZone) < len(agents) {
				ranked = metadata.Rank(inZone, key)
				if len(ranked) < replicas {
					ranked = append(ranked, metadata.Rank(outZone, key)...)
				}
			} else {
				ranked = rankReplicas(agents, key, replicas)
			}
			replicaIDs = make([]int32, replicas)
			for i, r := range ranked[:replicas] {
				replicaIDs[i] = r.NodeID
			}
		}
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		mp.LeaderEpoch = -1
		mp.Leader = replicaIDs[0]
		mp.Replicas = replicaIDs
		mp.ISR = replicaIDs
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// liveAgents returns the live agents, always including this one (the view
// may not have seen its own registration yet) unless it has withdrawn from
// the cluster to shut down. The result is never empty.
func (a *Agent) liveAgents() []metadata.AgentInfo {
	agents := a.view.Agents()
	self := a.NodeID()
	if a.withdrawn.Load() {
		// Others, if there are any; a lone agent still names itself.
		agents = slices.DeleteFunc(agents, func(ag metadata.AgentInfo) bool { return ag.NodeID == self })
		if len(agents) > 0 {
			return agents
		}
	}
	for _, ag := range agents {
		if ag.NodeID == self {
			return agents
		}
	}
	a.regMu.Lock()
	info := a.reg.Info()
	a.regMu.Unlock()
	out := make([]metadata.AgentInfo, 0, len(agents)+1)
	inserted := false
	for _, ag := range agents {
		if !inserted && ag.NodeID > info.NodeID {
			out = append(out, info)
			inserted = true
		}
		out = append(out, ag)
	}
	if !inserted {
		out = append(out, info)
	}
	return out
}
