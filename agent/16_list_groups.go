package agent

// ListGroups, v0–v5.
//
// As in Kafka, each agent lists the groups it coordinates, so a client
// that asks every broker (as admin clients do) sees each group once. The
// list comes from the groups stored in etcd, with the live state of
// groups this agent has loaded. v4+ filters by state (case-insensitive);
// v5 reports each group's type ("classic", or "consumer" for KIP-848
// groups) and filters by type.

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 16, min: 0, max: 5, serve: handleSync((*Agent).handleListGroups)})
}

// groupType names a stored group's type as ListGroups reports it.
func groupType(stored string) string {
	if stored == "" {
		return metadata.GroupTypeClassic
	}
	return stored
}

func (a *Agent) handleListGroups(ctx context.Context, rq *request, req *kmsg.ListGroupsRequest) (*kmsg.ListGroupsResponse, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	groups, bad, err := a.store.ListGroups(ctx)
	if err != nil {
		ke, _ := kafkaError(err)
		resp.ErrorCode = ke.Code
		return resp, nil
	}
	for _, e := range bad {
		a.log.Error("ignoring undecodable group", "err", e)
	}
	allVisible := a.authorizedCluster(rq.conn, metadata.ACLOpDescribe)
	for _, st := range groups {
		if !a.groups.isCoordinator(st.Name) {
			continue
		}
		if !allVisible && !a.authorizedGroup(rq.conn, metadata.ACLOpDescribe, st.Name) {
			continue
		}
		state, typ := st.State, groupType(st.Type)
		if g := a.groups.loaded(st.Name); g != nil {
			g.mu.Lock()
			if !g.gone && g.loaded {
				state = g.state
				if g.consumer != nil {
					typ = metadata.GroupTypeConsumer
				} else {
					typ = metadata.GroupTypeClassic
				}
			}
			g.mu.Unlock()
		}
		if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, typ) {
			continue
		}
		if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, state) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = st.Name
		lg.ProtocolType = st.ProtocolType
		lg.GroupState = state
		lg.GroupType = typ
		resp.Groups = append(resp.Groups, lg)
	}
	return resp, nil
}

func containsFold(ss []string, s string) bool {
	for _, v := range ss {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
