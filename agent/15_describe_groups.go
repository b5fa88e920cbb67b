package agent

// DescribeGroups, v0–v6.
//
// Served by each group's coordinator (NOT_COORDINATOR per group
// elsewhere), from memory when the group is loaded, else from its state
// in etcd. States are Kafka's names. As in Kafka, the protocol name and
// the members' metadata and assignments are reported only while the group
// is Stable. A group that does not exist is reported as "Dead", with
// GROUP_ID_NOT_FOUND from v6, and so is a consumer-protocol (KIP-848)
// group, as Kafka reports it (ConsumerGroupDescribe describes those).
// Authorized operations are not computed (floe has no ACLs) and reported
// as unset.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 15, min: 0, max: 6, serve: handleSync((*Agent).handleDescribeGroups)})
}

func (a *Agent) handleDescribeGroups(ctx context.Context, rq *request, req *kmsg.DescribeGroupsRequest) (*kmsg.DescribeGroupsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		sg := kmsg.NewDescribeGroupsResponseGroup()
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
		case !found || st.Type == metadata.GroupTypeConsumer:
			// Kafka describes consumer-protocol groups with
			// ConsumerGroupDescribe only.
			sg.State = metadata.GroupDead
			if found && req.Version >= 6 {
				sg.ErrorCode = kerr.GroupIDNotFound.Code
				sg.ErrorMessage = errMessage("group " + name + " is a consumer-protocol group; ConsumerGroupDescribe describes it")
				break
			}
			if req.Version >= 6 {
				sg.ErrorCode = kerr.GroupIDNotFound.Code
				sg.ErrorMessage = errMessage("group " + name + " does not exist")
			}
		default:
			sg.State = st.State
			sg.ProtocolType = st.ProtocolType
			stable := st.State == metadata.GroupStable
			if stable {
				sg.Protocol = st.Protocol
			}
			for _, m := range st.Members {
				sm := kmsg.NewDescribeGroupsResponseGroupMember()
				sm.MemberID = m.MemberID
				sm.InstanceID = m.InstanceID
				sm.ClientID = m.ClientID
				sm.ClientHost = m.ClientHost
				if stable {
					for _, p := range m.Protocols {
						if p.Name == st.Protocol {
							sm.ProtocolMetadata = p.Metadata
						}
					}
					sm.MemberAssignment = m.Assignment
				}
				sg.Members = append(sg.Members, sm)
			}
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

// describe returns a group's state as this coordinator knows it.
func (gc *groupCoordinator) describe(ctx context.Context, name string) (metadata.GroupState, bool, error) {
	if err := gc.checkCoordinator(name); err != nil {
		return metadata.GroupState{}, false, err
	}
	if g := gc.loaded(name); g != nil {
		g.mu.Lock()
		if !g.gone && g.loaded {
			st, found := g.snapshotLocked(), g.persisted || g.memberCountLocked() > 0
			g.mu.Unlock()
			return st, found, nil
		}
		g.mu.Unlock()
	}
	return gc.a.store.GetGroup(ctx, name)
}
