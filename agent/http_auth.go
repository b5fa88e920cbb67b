package agent

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"net/http"
	"strings"
	"time"
)

// HTTPAuthConfig guards the agent's HTTP listener.
type HTTPAuthConfig struct {
	// Required turns authentication on: requests need a bearer token from
	// Tokens, or HTTP basic authentication as a SCRAM user (checked
	// against the same credentials SASL uses).
	Required bool
	Tokens   []string
	// OpenPaths are served without authentication (e.g. /healthz,
	// /readyz for probes, /metrics for a scraper without credentials).
	OpenPaths []string
}

// ProtectHTTP wraps h so that, when authentication is required, every path
// but the open ones needs a bearer token or a SCRAM user's password.
// Failed attempts are logged with the client's address and slowed down,
// as SASL failures are.
func (a *Agent) ProtectHTTP(h http.Handler, cfg HTTPAuthConfig) http.Handler {
	if !cfg.Required {
		return h
	}
	open := map[string]bool{}
	for _, p := range cfg.OpenPaths {
		open[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open[r.URL.Path] || a.httpAuthorized(r, cfg.Tokens) {
			h.ServeHTTP(w, r)
			return
		}
		a.log.Warn("HTTP authentication failed", "client", r.RemoteAddr, "path", r.URL.Path)
		select {
		case <-time.After(a.cfg.Security.FailedAuthDelay):
		case <-r.Context().Done():
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="floe", Basic realm="floe"`)
		http.Error(w, "authentication required: send a bearer token (--http-token) or basic authentication as a SCRAM user", http.StatusUnauthorized)
	})
}

func (a *Agent) httpAuthorized(r *http.Request, tokens []string) bool {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		for _, t := range tokens {
			if t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
				return true
			}
		}
		return false
	}
	user, password, ok := r.BasicAuth()
	if !ok || user == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	creds, err := a.store.UserCredentials(ctx, user)
	return err == nil && verifyPlain(creds, password)
}

// ServerTLS is the TLS configuration the Kafka listeners use (certificate
// reloaded when its files change), for serving HTTP over TLS too.
func (s *SecurityConfig) ServerTLS() (*tls.Config, error) {
	return s.serverTLS()
}
