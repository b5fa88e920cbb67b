package agent

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

// anonymous is the principal of connections that did not authenticate.
const anonymous = "User:ANONYMOUS"

// connAuth is a connection's authentication state.
type connAuth struct {
	principal string
	// authenticated: SASL completed (or the listener needs none).
	authenticated bool
	// expires ends the SASL session (KIP-368 re-authentication); zero
	// means never.
	expires time.Time
	// mechanism chosen by SaslHandshake, and the SCRAM exchange in
	// progress.
	mechanism string
	scram     *scramServer
}

// handshake completes TLS (before anything is read, so the principal of a
// client certificate is known) and sets the connection's starting
// identity. It returns false if the connection should close.
func (c *conn) handshake() bool {
	c.auth.authenticated = !c.lst.cfg.SASL()
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	err := tc.HandshakeContext(c.ctx)
	c.nc.SetDeadline(time.Time{})
	if err != nil {
		c.log.Info("TLS handshake failed", "err", err)
		return false
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 && c.a.cfg.Security.TLSClientCAFile != "" {
		// A verified client certificate names the principal, as Kafka's
		// default SSL principal builder does.
		c.auth.principal = "User:" + certs[0].Subject.String()
	}
	return true
}

// checkAuthenticated lets a request through on a SASL listener only after
// authentication (and before its session expires); ApiVersions and the
// SASL requests always pass.
func (c *conn) checkAuthenticated(key int16) error {
	switch key {
	case kmsg.ApiVersions.Int16(), kmsg.SASLHandshake.Int16(), kmsg.SASLAuthenticate.Int16():
		return nil
	}
	if !c.auth.authenticated {
		return fmt.Errorf("%s before SASL authentication on a %s listener", kmsg.NameForKey(key), c.lst.cfg.Protocol)
	}
	if !c.auth.expires.IsZero() && time.Now().After(c.auth.expires) {
		return fmt.Errorf("%s after the SASL session of %s expired; the client must re-authenticate", kmsg.NameForKey(key), c.auth.principal)
	}
	return nil
}

// mechanismEnabled reports whether a SASL mechanism may be used on the
// connection's listener.
func (c *conn) mechanismEnabled(mech string) bool {
	sec := &c.a.cfg.Security
	found := false
	for _, m := range sec.SASLMechanisms {
		found = found || m == mech
	}
	if !found {
		return false
	}
	if mech == "PLAIN" && !c.lst.cfg.TLS() && !sec.AllowPlainWithoutTLS {
		return false
	}
	return true
}

func (c *conn) enabledMechanisms() []string {
	var out []string
	for _, m := range c.a.cfg.Security.SASLMechanisms {
		if c.mechanismEnabled(m) {
			out = append(out, m)
		}
	}
	return out
}

// errAuthFailed is the one message failed authentications get, whatever
// failed, so clients cannot probe which users exist.
var errAuthFailed = errors.New("authentication failed: unknown user or wrong password")

// verifyPlain checks a PLAIN password against the user's stored SCRAM
// credential.
func verifyPlain(creds map[string]metadata.ScramCredential, password string) bool {
	for _, mech := range []string{metadata.ScramSHA512, metadata.ScramSHA256} {
		cred, ok := creds[mech]
		if !ok {
			continue
		}
		h, _ := metadata.ScramHash(mech)
		salted, err := pbkdf2.Key(h, password, cred.Salt, cred.Iterations, h().Size())
		if err != nil {
			return false
		}
		want, err := metadata.NewScramCredential(mech, cred.Salt, salted, cred.Iterations)
		if err != nil {
			return false
		}
		return subtle.ConstantTimeCompare(want.StoredKey, cred.StoredKey) == 1
	}
	return false
}

// parsePlain splits a PLAIN message: [authzid] NUL authcid NUL passwd.
func parsePlain(msg []byte) (user, password string, err error) {
	parts := strings.Split(string(msg), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", errors.New("malformed PLAIN message")
	}
	if parts[0] != "" && parts[0] != parts[1] {
		return "", "", errors.New("PLAIN authorization identity must be empty or the user")
	}
	return parts[1], parts[2], nil
}

// scramServer runs the server side of one SCRAM exchange (RFC 5802).
type scramServer struct {
	mechanism string
	// state
	step            int
	user            string
	cred            metadata.ScramCredential
	known           bool
	clientFirstBare string
	serverFirst     string
	cnonce          string
	nonce           string
}

// fakeSalt gives unknown users a stable salt, so the first server message
// does not reveal whether a user exists.
var fakeSaltKey = func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}()

// first handles client-first-message and returns server-first-message.
// lookup returns the user's credential for the mechanism, if any.
func (s *scramServer) first(msg string, lookup func(user string) (metadata.ScramCredential, bool)) (string, error) {
	// gs2-header: n,, or y,, (no channel binding), optional a=authzid.
	parts := strings.SplitN(msg, ",", 3)
	if len(parts) != 3 || (parts[0] != "n" && parts[0] != "y") {
		return "", errors.New("SCRAM client-first-message: channel binding is not supported")
	}
	if parts[1] != "" && !strings.HasPrefix(parts[1], "a=") {
		return "", errors.New("SCRAM client-first-message: bad authorization identity")
	}
	s.clientFirstBare = parts[2]
	var cnonce string
	for _, attr := range strings.Split(s.clientFirstBare, ",") {
		switch {
		case strings.HasPrefix(attr, "n="):
			s.user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(attr[2:])
		case strings.HasPrefix(attr, "r="):
			cnonce = attr[2:]
		case strings.HasPrefix(attr, "m="):
			return "", errors.New("SCRAM: mandatory extensions are not supported")
		case strings.HasPrefix(attr, "tokenauth="):
			return "", errors.New("SCRAM: delegation tokens are not supported")
		}
	}
	if s.user == "" || cnonce == "" {
		return "", errors.New("SCRAM client-first-message: missing user or nonce")
	}
	if want := "a=" + s.user; parts[1] != "" && parts[1] != want {
		return "", errors.New("SCRAM: authorization identity must be the user")
	}
	s.cred, s.known = lookup(s.user)
	if !s.known {
		m := hmac.New(sha256.New, fakeSaltKey)
		m.Write([]byte(s.user))
		s.cred = metadata.ScramCredential{Salt: m.Sum(nil)[:16], Iterations: metadata.MinScramIterations}
	}
	b := make([]byte, 24)
	rand.Read(b)
	s.cnonce = cnonce
	s.nonce = cnonce + base64.RawStdEncoding.EncodeToString(b)
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(s.cred.Iterations)
	s.step = 1
	return s.serverFirst, nil
}

// final handles client-final-message and returns server-final-message,
// or errAuthFailed.
func (s *scramServer) final(msg string) (string, error) {
	if s.step != 1 {
		return "", errors.New("SCRAM: message out of order")
	}
	s.step = 2
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", errors.New("SCRAM client-final-message: no proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	var nonce string
	for _, attr := range strings.Split(withoutProof, ",") {
		if strings.HasPrefix(attr, "r=") {
			nonce = attr[2:]
		}
	}
	// librdkafka before 2.6.1 prepends its own nonce once more
	// (confluentinc/librdkafka#4895); Kafka accepted that until 4.0, and
	// Debian ships such a librdkafka, so accept exactly that form too.
	if nonce != s.nonce && nonce != s.cnonce+s.nonce {
		return "", errors.New("SCRAM client-final-message: nonce mismatch")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil {
		return "", errors.New("SCRAM client-final-message: bad proof encoding")
	}
	h, err := metadata.ScramHash(s.mechanism)
	if err != nil {
		return "", err
	}
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	mac := func(key []byte, m string) []byte {
		x := hmac.New(h, key)
		x.Write([]byte(m))
		return x.Sum(nil)
	}
	if !s.known || len(proof) != len(s.cred.StoredKey) {
		return "", errAuthFailed
	}
	sig := mac(s.cred.StoredKey, authMessage)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ sig[i]
	}
	sum := h()
	sum.Write(clientKey)
	if subtle.ConstantTimeCompare(sum.Sum(nil), s.cred.StoredKey) != 1 {
		return "", errAuthFailed
	}
	return "v=" + base64.StdEncoding.EncodeToString(mac(s.cred.ServerKey, authMessage)), nil
}
