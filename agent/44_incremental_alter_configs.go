package agent

// IncrementalAlterConfigs, v0–v1.
//
// SET and DELETE change one topic config each; APPEND and SUBTRACT add to
// or remove from list configs (cleanup.policy, the replication
// throttles). The whole resource is validated and written in one
// compare-and-swap, so either every change lands or none does. Group
// resources take SET and DELETE of the group configs (group_configs.go).

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 44, min: 0, max: 1, serve: handleSync((*Agent).handleIncrementalAlterConfigs)})
}

func (a *Agent) handleIncrementalAlterConfigs(ctx context.Context, rq *request, req *kmsg.IncrementalAlterConfigsRequest) (*kmsg.IncrementalAlterConfigsResponse, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		var err error
		if rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig {
			err = a.alterGroupConfigs(ctx, rq.conn, rr.ResourceName, req.ValidateOnly, rr.Configs)
		} else {
			err = a.alterTopicConfigs(ctx, rq.conn, rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
				for _, c := range rr.Configs {
					if err := applyIncremental(cur, c); err != nil {
						return nil, err
					}
				}
				return cur, nil
			})
		}
		if err != nil {
			ke, msg := kafkaError(err)
			sr.ErrorCode = ke.Code
			sr.ErrorMessage = errMessage(msg)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func applyIncremental(cur map[string]string, c kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	def, known := metadata.LookupTopicConfig(c.Name)
	value := ""
	if c.Value != nil {
		value = *c.Value
	}
	switch c.Op {
	case kmsg.IncrementalAlterConfigOpSet:
		if c.Value == nil {
			return kafkaErrorf(kerr.InvalidRequest, "SET of %s needs a value", c.Name)
		}
		cur[c.Name] = value
	case kmsg.IncrementalAlterConfigOpDelete:
		delete(cur, c.Name)
	case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		if !known {
			return metadata.ValidateTopicConfig(c.Name, value) // names the unknown key
		}
		if def.Type != metadata.ConfigList {
			return kafkaErrorf(kerr.InvalidConfig, "%s is not a list config; use SET", c.Name)
		}
		existing, ok := cur[c.Name]
		if !ok {
			existing = def.Default
		}
		items := splitList(existing)
		for _, v := range splitList(value) {
			if c.Op == kmsg.IncrementalAlterConfigOpAppend {
				if !slices.Contains(items, v) {
					items = append(items, v)
				}
			} else {
				items = slices.DeleteFunc(items, func(s string) bool { return s == v })
			}
		}
		cur[c.Name] = strings.Join(items, ",") // validated with the rest
	default:
		return kafkaErrorf(kerr.InvalidRequest, "unknown config operation %d for %s", c.Op, c.Name)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
