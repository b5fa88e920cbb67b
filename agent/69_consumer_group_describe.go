package agent

// ConsumerGroupDescribe, v0–v1.
//
// Served by each group's coordinator (NOT_COORDINATOR per group
// elsewhere), from memory when the group is loaded, else from its state
// in etcd. A group that does not exist, or is a classic group, gets
// GROUP_ID_NOT_FOUND, as Kafka answers (DescribeGroups describes classic
// groups). Members are reported with their epoch, subscription, current
// assignment and target; topics are named by ID and by name (a topic
// deleted since has an empty name). Authorized operations are not
// computed and reported as unset.

import (
	"context"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 69, min: 0, max: 1, serve: handleSync((*Agent).handleConsumerGroupDescribe)})
}

// ConsumerGroupDescribe v1's member types.
const (
	memberTypeClassic  = 0
	memberTypeConsumer = 1
)

func (a *Agent) handleConsumerGroupDescribe(ctx context.Context, rq *request, req *kmsg.ConsumerGroupDescribeRequest) (*kmsg.ConsumerGroupDescribeResponse, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, name := range req.Groups {
		sg := kmsg.NewConsumerGroupDescribeResponseGroup()
		sg.Group = name
		sg.AuthorizedOperations = authorizedOpsUnset
		if !a.authorizedGroup(rq.conn, metadata.ACLOpDescribe, name) {
			sg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		st, found, err := a.groups.describe(ctx, name)
		switch {
		case err != nil:
			ke, msg := kafkaError(err)
			sg.ErrorCode = ke.Code
			sg.ErrorMessage = errMessage(msg)
		case !found:
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = errMessage("group " + name + " does not exist")
		case st.Type != metadata.GroupTypeConsumer:
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = errMessage("group " + name + " is a classic group; DescribeGroups describes it")
		default:
			a.describeConsumerGroup(&sg, st)
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

func (a *Agent) describeConsumerGroup(sg *kmsg.ConsumerGroupDescribeResponseGroup, st metadata.GroupState) {
	cg := st.Consumer
	sg.State = st.State
	sg.Epoch = cg.Epoch
	sg.AssignmentEpoch = cg.AssignmentEpoch
	sg.AssignorName = cg.Assignor
	names := map[uuid.UUID]string{}
	for _, t := range cg.Topics {
		names[t.ID] = t.Name
	}
	assignment := func(tps []metadata.TopicPartitions) kmsg.Assignment {
		out := kmsg.NewAssignment()
		out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
		for _, tp := range tps {
			at := kmsg.NewAssignmentTopicPartition()
			at.TopicID = tp.Topic
			at.Topic = names[tp.Topic]
			if at.Topic == "" {
				if t, ok := a.view.TopicByID(tp.Topic); ok {
					at.Topic = t.Name
				}
			}
			at.Partitions = tp.Partitions
			out.TopicPartitions = append(out.TopicPartitions, at)
		}
		return out
	}
	for _, m := range cg.Members {
		sm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		sm.MemberID = m.MemberID
		sm.InstanceID = m.InstanceID
		sm.RackID = m.RackID
		sm.MemberEpoch = m.Epoch
		sm.ClientID = m.ClientID
		sm.ClientHost = m.ClientHost
		sm.SubscribedTopics = m.SubscribedTopics
		if sm.SubscribedTopics == nil {
			sm.SubscribedTopics = []string{}
		}
		if m.SubscribedRegex != "" {
			sm.SubscribedTopicRegex = kmsg.StringPtr(m.SubscribedRegex)
		}
		sm.Assignment = assignment(m.Assigned)
		sm.TargetAssignment = assignment(m.Target)
		sm.MemberType = memberTypeConsumer
		if m.Classic != nil {
			sm.MemberType = memberTypeClassic
		}
		sg.Members = append(sg.Members, sm)
	}
}
