package agent

// SaslHandshake, v0–v1.
//
// Picks the SASL mechanism for the SaslAuthenticate requests that follow.
// v0 is advertised because librdkafka enables SASL only when it sees it,
// but the exchange must then use SaslAuthenticate: a client that follows a
// v0 handshake with raw, unframed SASL bytes (clients before Kafka 1.0)
// has its connection closed. The mechanisms offered depend on
// the listener: PLAIN only over TLS unless --sasl-allow-plain-without-tls.
// A listener without SASL answers ILLEGAL_SASL_STATE. A client may send it
// again on an authenticated connection to re-authenticate (KIP-368).

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(apiSpec{key: 17, min: 0, max: 1, serve: handleSync((*Agent).handleSASLHandshake)})
}

func (a *Agent) handleSASLHandshake(_ context.Context, rq *request, req *kmsg.SASLHandshakeRequest) (*kmsg.SASLHandshakeResponse, error) {
	c := rq.conn
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = c.enabledMechanisms()
	if !c.lst.cfg.SASL() {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	if !slices.Contains(resp.SupportedMechanisms, req.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp, nil
	}
	c.auth.mechanism = req.Mechanism
	c.auth.scram = nil
	return resp, nil
}
