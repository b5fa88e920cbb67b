package agent

// DeleteTopics, v0–v6.
//
// Topics are named (v0–v5) or named or identified by topic ID (v6). The
// topic, its partition state and its index entries go in one etcd
// transaction; its segment objects are then referenced by nothing and the
// compactor deletes them after its grace period. Internal topics cannot be
// deleted.

import (
	"context"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 20, min: 0, max: 6, serve: handleSync((*Agent).handleDeleteTopics)})
}

func (a *Agent) handleDeleteTopics(ctx context.Context, rq *request, req *kmsg.DeleteTopicsRequest) (*kmsg.DeleteTopicsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version < 6 {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	} else {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic = tg.name
		st.TopicID = tg.id
		err := func() error {
			name := ""
			switch {
			case tg.name != nil && *tg.name != "":
				name = *tg.name
			case tg.id != [16]byte{}:
				t, err := a.lookupTopicByID(ctx, uuid.UUID(tg.id))
				if err != nil {
					return kafkaErrorf(kerr.UnknownTopicID, "no topic has ID %s", uuid.UUID(tg.id))
				}
				name = t.Name
				st.Topic = &t.Name
			default:
				return kafkaErrorf(kerr.InvalidRequest, "a topic to delete needs a name or an ID")
			}
			if !a.authorizedTopic(rq.conn, metadata.ACLOpDelete, name) {
				return kafkaErrorf(kerr.TopicAuthorizationFailed, "%s may not delete topic %s", rq.conn.auth.principal, name)
			}
			t, err := a.lookupTopic(ctx, name)
			if err != nil {
				return err
			}
			if t.Internal() {
				return kafkaErrorf(kerr.InvalidRequest, "topic %s is internal to floe and cannot be deleted", name)
			}
			deleted, err := a.store.DeleteTopic(ctx, name)
			if err != nil {
				return err
			}
			st.TopicID = deleted.ID
			if err := a.view.WaitTopicsRevision(ctx, deleted.ModRevision); err != nil {
				return err
			}
			a.log.Info("topic deleted", "topic", name, "id", deleted.ID)
			return nil
		}()
		if err != nil {
			ke, msg := kafkaError(err)
			st.ErrorCode = ke.Code
			st.ErrorMessage = errMessage(msg)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
