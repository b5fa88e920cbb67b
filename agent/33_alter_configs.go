package agent

// AlterConfigs, v0–v2, and IncrementalAlterConfigs (44_...).
//
// AlterConfigs replaces a topic's whole set of overrides with the ones
// given (Kafka's non-incremental semantics: configs not named return to
// their defaults). Values are validated; an unknown key or bad value fails
// that resource with INVALID_CONFIG and changes nothing. Broker configs
// are set by flags on each agent and cannot be altered here.
// ValidateOnly checks without writing.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 33, min: 0, max: 2, serve: handleSync((*Agent).handleAlterConfigs)})
}

func (a *Agent) handleAlterConfigs(ctx context.Context, rq *request, req *kmsg.AlterConfigsRequest) (*kmsg.AlterConfigsResponse, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		next := map[string]string{}
		for _, c := range rr.Configs {
			if c.Value != nil {
				next[c.Name] = *c.Value
			}
		}
		err := a.alterTopicConfigs(ctx, rq.conn, rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			return next, nil
		})
		if err != nil {
			ke, msg := kafkaError(err)
			sr.ErrorCode = ke.Code
			sr.ErrorMessage = errMessage(msg)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// alterTopicConfigs applies fn to a topic's overrides, shared by both
// alter APIs.
func (a *Agent) alterTopicConfigs(ctx context.Context, c *conn, typ kmsg.ConfigResourceType, name string, validateOnly bool, fn func(map[string]string) (map[string]string, error)) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !a.authorizedTopic(c, metadata.ACLOpAlterConfigs, name) {
			return kafkaErrorf(kerr.TopicAuthorizationFailed, "%s may not alter the configs of topic %s", c.auth.principal, name)
		}
	case kmsg.ConfigResourceTypeBroker:
		return kafkaErrorf(kerr.InvalidRequest, "broker configs are set by flags on each agent (see floe agent --help) and cannot be altered through the Kafka API")
	default:
		return kafkaErrorf(kerr.InvalidRequest, "floe alters topic configs only (resource type %d asked)", typ)
	}
	t, err := a.lookupTopic(ctx, name)
	if err != nil {
		return err
	}
	if validateOnly {
		next, err := fn(cloneConfigs(t.Configs))
		if err != nil {
			return err
		}
		return metadata.ValidateTopicConfigs(next)
	}
	updated, err := a.store.UpdateTopicConfigs(ctx, name, fn)
	if err != nil {
		return err
	}
	if err := a.view.WaitTopicsRevision(ctx, updated.ModRevision); err != nil {
		return fmt.Errorf("waiting for topic %s to update: %w", name, err)
	}
	a.log.Info("topic configs altered", "topic", name, "configs", updated.Configs)
	return nil
}

func cloneConfigs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
