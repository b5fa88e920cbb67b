package agent

// DeleteGroups, v0–v3.
//
// Served by each group's coordinator. A group with members gets
// NON_EMPTY_GROUP; one that does not exist GROUP_ID_NOT_FOUND. Deleting
// removes the group's state, all its committed offsets and its claim in
// one etcd transaction, fenced by the claim, then writes tombstones for
// them to __consumer_offsets.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 42, min: 0, max: 3, serve: handleSync((*Agent).handleDeleteGroups)})
}

func (a *Agent) handleDeleteGroups(ctx context.Context, rq *request, req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		sg := kmsg.NewDeleteGroupsResponseGroup()
		sg.Group = name
		if !a.authorizedGroup(rq.conn, metadata.ACLOpDelete, name) {
			sg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		} else if err := a.groups.deleteGroup(ctx, name); err != nil {
			ke, msg := kafkaError(err)
			sg.ErrorCode = ke.Code
			sg.ErrorMessage = errMessage(msg)
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

func (gc *groupCoordinator) deleteGroup(ctx context.Context, name string) error {
	g, err := gc.acquire(ctx, name)
	if err != nil {
		return err
	}
	defer g.unlockReleasingIdle()
	if n := g.memberCountLocked(); n > 0 {
		return kafkaErrorf(kerr.NonEmptyGroup, "group %q has %d members; it can be deleted once they leave", name, n)
	}
	offsets, _, err := gc.a.store.FetchOffsets(ctx, name)
	if err != nil {
		return err
	}
	if !g.persisted && len(offsets) == 0 {
		return kafkaErrorf(kerr.GroupIDNotFound, "group %q does not exist", name)
	}
	wctx, cancel := gc.etcdCtx()
	defer cancel()
	if err := gc.a.store.DeleteGroup(wctx, g.claim); err != nil {
		return g.failLocked(err)
	}
	gc.log.Info("group deleted", "group", name)
	gc.a.feed.groupDeleted(name, offsets)
	g.persisted = false
	g.dropLocked("the group was deleted")
	return nil
}
