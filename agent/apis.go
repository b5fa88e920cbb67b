package agent

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiSpec is one Kafka API the agent serves.
type apiSpec struct {
	key      int16
	min, max int16
	serve    serveFunc
}

// serveFunc handles one request. It is called on the connection's read
// goroutine, in the order requests arrive, and must answer through rq
// exactly once: at once (synchronous APIs), or later from a goroutine it
// starts with rq.conn.goAsync (produce waiting for a flush, fetch long
// polls). Work that must keep request order (appending produce batches)
// happens before serveFunc returns.
type serveFunc func(a *Agent, ctx context.Context, rq *request)

var apis = map[int16]apiSpec{}

func register(spec apiSpec) {
	if _, dup := apis[spec.key]; dup {
		panic(fmt.Sprintf("agent: API key %d registered twice", spec.key))
	}
	if spec.max > kmsg.RequestForKey(spec.key).MaxVersion() {
		panic(fmt.Sprintf("agent: API key %d registered up to v%d, beyond what kmsg encodes", spec.key, spec.max))
	}
	apis[spec.key] = spec
}

// sortedAPIs returns the registered APIs by key.
func sortedAPIs() []apiSpec {
	out := make([]apiSpec, 0, len(apis))
	for _, s := range apis {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b apiSpec) int { return int(a.key) - int(b.key) })
	return out
}

// handleSync adapts a handler that answers before returning. A non-nil
// error closes the connection (the request could not be answered at all);
// Kafka errors belong in the response.
// handleAsync is handleSync for requests that wait (for a flush, or for
// etcd more than once): fn runs on a goroutine the connection owns, and
// the connection reads on meanwhile; responses still go out in order.
func handleAsync[Req kmsg.Request, Resp kmsg.Response](fn func(*Agent, context.Context, *request, Req) (Resp, error)) serveFunc {
	return func(a *Agent, ctx context.Context, rq *request) {
		rq.conn.goAsync(func() {
			resp, err := fn(a, ctx, rq, rq.req.(Req))
			if err != nil {
				rq.fail(err)
				return
			}
			rq.reply(resp)
		})
	}
}

func handleSync[Req kmsg.Request, Resp kmsg.Response](fn func(*Agent, context.Context, *request, Req) (Resp, error)) serveFunc {
	return func(a *Agent, ctx context.Context, rq *request) {
		resp, err := fn(a, ctx, rq, rq.req.(Req))
		if err != nil {
			rq.fail(err)
			return
		}
		rq.reply(resp)
	}
}
