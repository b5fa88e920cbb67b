package agent

// ApiVersions, v0–v4.
//
// The advertised keys and version ranges are derived from the handlers
// registered in this package, so the agent never claims an API it does not
// serve. A request at a version newer than v4 is answered in v0 format with
// UNSUPPORTED_VERSION and the supported ranges, so the client retries at a
// version we speak (KIP-511; see conn.parse). The ApiVersions response
// header never carries tagged fields (see encodeResponse).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(apiSpec{key: 18, min: 0, max: 4, serve: handleSync((*Agent).handleApiVersions)})
}

func (a *Agent) handleApiVersions(_ context.Context, _ *request, req *kmsg.ApiVersionsRequest) (*kmsg.ApiVersionsResponse, error) {
	return apiVersionsResponse(req.Version, 0), nil
}

func apiVersionsResponse(version int16, errCode int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	resp.ErrorCode = errCode
	for _, spec := range sortedAPIs() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey = spec.key
		k.MinVersion = spec.min
		k.MaxVersion = spec.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	if version >= 3 {
		// transaction.version 2 (KIP-890): EndTxn bumps the epoch, produce
		// v12+ and TxnOffsetCommit v5+ add partitions and groups to the
		// transaction themselves. floe's features never change, so their
		// epoch is constant.
		resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{{Name: "transaction.version", MinVersion: 0, MaxVersion: 2}}
		resp.FinalizedFeaturesEpoch = 1
		resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{{Name: "transaction.version", MinVersionLevel: 2, MaxVersionLevel: 2}}
	}
	return resp
}
