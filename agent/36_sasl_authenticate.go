package agent

// SaslAuthenticate, v0–v2.
//
// Carries the SASL exchange chosen by SaslHandshake. PLAIN checks the
// password against the user's stored SCRAM credential (floe keeps only
// salted hashes, never passwords). SCRAM-SHA-256 and SCRAM-SHA-512 run RFC
// 5802 with the credentials in etcd; unknown users get a fake salt so the
// exchange does not reveal whether a user exists. A failed attempt is
// logged with the client's address, answered SASL_AUTHENTICATION_FAILED
// after a delay (--sasl-failure-delay), and the connection is closed.
// When --sasl-session-lifetime is set, v1+ responses carry it and the
// client must re-authenticate before it passes (KIP-368).

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 36, min: 0, max: 2, serve: (*Agent).serveSASLAuthenticate})
}

func (a *Agent) serveSASLAuthenticate(ctx context.Context, rq *request) {
	req := rq.req.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := rq.conn
	out, principal, done, err := a.saslStep(ctx, c, req.SASLAuthBytes)
	if err != nil {
		a.metrics.authentications.WithLabelValues(c.auth.mechanism, "failed").Inc()
		a.log.Warn("SASL authentication failed", "client", c.remote, "client_id", rq.clientID, "mechanism", c.auth.mechanism, "err", err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := errAuthFailed.Error()
		if !errors.Is(err, errAuthFailed) {
			msg = "authentication failed: " + err.Error()
		}
		resp.ErrorMessage = &msg
		rq.closeAfter = true
		c.auth.scram = nil
		delay := a.cfg.Security.FailedAuthDelay
		c.goAsync(func() {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-c.ctx.Done():
			}
			rq.reply(resp)
		})
		return
	}
	resp.SASLAuthBytes = out
	if done {
		a.metrics.authentications.WithLabelValues(c.auth.mechanism, "ok").Inc()
		c.auth.principal = "User:" + principal
		c.auth.authenticated = true
		c.auth.mechanism = ""
		c.auth.scram = nil
		c.auth.expires = time.Time{}
		if lt := a.cfg.Security.SessionLifetime; lt > 0 {
			c.auth.expires = time.Now().Add(lt)
			resp.SessionLifetimeMillis = lt.Milliseconds()
		}
		a.log.Debug("SASL authenticated", "client", c.remote, "principal", c.auth.principal)
	}
	rq.reply(resp)
}

// saslStep advances the connection's SASL exchange by one message.
func (a *Agent) saslStep(ctx context.Context, c *conn, msg []byte) (out []byte, user string, done bool, err error) {
	if !c.lst.cfg.SASL() {
		return nil, "", false, errors.New("this listener does not use SASL")
	}
	lookup := func(user, mech string) (metadata.ScramCredential, map[string]metadata.ScramCredential, bool) {
		creds, err := a.store.UserCredentials(ctx, user)
		if err != nil {
			return metadata.ScramCredential{}, nil, false
		}
		cred, ok := creds[mech]
		return cred, creds, ok
	}
	switch c.auth.mechanism {
	case "PLAIN":
		u, pw, err := parsePlain(msg)
		if err != nil {
			return nil, "", false, err
		}
		_, creds, _ := lookup(u, "")
		if !verifyPlain(creds, pw) {
			return nil, "", false, errAuthFailed
		}
		return nil, u, true, nil
	case metadata.ScramSHA256, metadata.ScramSHA512:
		if c.auth.scram == nil {
			c.auth.scram = &scramServer{mechanism: c.auth.mechanism}
			first, err := c.auth.scram.first(string(msg), func(u string) (metadata.ScramCredential, bool) {
				cred, _, ok := lookup(u, c.auth.mechanism)
				return cred, ok
			})
			return []byte(first), "", false, err
		}
		final, err := c.auth.scram.final(string(msg))
		if err != nil {
			return nil, "", false, err
		}
		return []byte(final), c.auth.scram.user, true, nil
	default:
		return nil, "", false, errors.New("no SASL mechanism chosen: send SaslHandshake first")
	}
}
