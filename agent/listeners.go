package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/floe-io/floe/internal/certs"
)

// Kafka's security protocols for a listener.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// ListenerConfig is one Kafka listener. Its name is its security protocol,
// so an agent has at most one listener per protocol; clients learn each
// agent's address on the listener they connected through.
type ListenerConfig struct {
	Protocol string // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	Addr     string // host:port to bind
	// Advertise is the host:port clients are told; default: the bound
	// address, with the hostname for a wildcard host.
	Advertise string
}

// TLS reports whether the listener encrypts.
func (l ListenerConfig) TLS() bool { return l.Protocol == ProtocolSSL || l.Protocol == ProtocolSASLSSL }

// SASL reports whether the listener authenticates with SASL.
func (l ListenerConfig) SASL() bool {
	return l.Protocol == ProtocolSASLPlaintext || l.Protocol == ProtocolSASLSSL
}

// ParseListener parses PROTOCOL://host:port, as Kafka's listeners setting
// writes it.
func ParseListener(s string) (ListenerConfig, error) {
	proto, addr, ok := strings.Cut(s, "://")
	if !ok {
		return ListenerConfig{}, fmt.Errorf("listener %q: want PROTOCOL://host:port, e.g. SASL_SSL://0.0.0.0:9093", s)
	}
	proto = strings.ToUpper(proto)
	switch proto {
	case ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
	default:
		return ListenerConfig{}, fmt.Errorf("listener %q: protocol %s is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", s, proto)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return ListenerConfig{}, fmt.Errorf("listener %q: %w", s, err)
	}
	return ListenerConfig{Protocol: proto, Addr: addr}, nil
}

// SecurityConfig configures TLS, SASL and authorization.
type SecurityConfig struct {
	// TLSCertFile and TLSKeyFile are the agent's certificate and key
	// (PEM), reloaded when the files change.
	TLSCertFile, TLSKeyFile string
	// TLSClientCAFile, when set, verifies client certificates against
	// these CAs; a verified certificate's subject becomes the principal
	// (User:CN=...,O=...).
	TLSClientCAFile string
	// TLSRequireClientCert refuses TLS clients without a certificate.
	TLSRequireClientCert bool
	// SASLMechanisms enabled on SASL listeners. Default SCRAM-SHA-256,
	// SCRAM-SHA-512 and PLAIN.
	SASLMechanisms []string
	// AllowPlainWithoutTLS allows PLAIN on SASL_PLAINTEXT listeners,
	// where the password crosses the network in the clear.
	AllowPlainWithoutTLS bool
	// SessionLifetime, when positive, makes clients re-authenticate
	// (KIP-368) before it passes; a connection whose session expired may
	// send only SASL requests.
	SessionLifetime time.Duration
	// SuperUsers bypass ACLs (principals such as User:admin).
	SuperUsers []string
	// AllowEveryoneIfNoACL allows an operation on a resource that no ACL
	// names. With authentication on it defaults to false.
	AllowEveryoneIfNoACL bool
	// Authorize turns ACL checks on. The command line turns it on when any
	// listener authenticates (SASL or client certificates).
	Authorize bool
	// SASLMaxReceiveBytes bounds a request on a SASL listener before the
	// client has authenticated (Kafka's sasl.server.max.receive.size).
	// Default 512 KiB.
	SASLMaxReceiveBytes int32
	// FailedAuthDelay slows the answer to a failed authentication.
	// Default 1s.
	FailedAuthDelay time.Duration
}

func (s *SecurityConfig) setDefaults() {
	if len(s.SASLMechanisms) == 0 {
		s.SASLMechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"}
	}
	if s.FailedAuthDelay == 0 {
		s.FailedAuthDelay = time.Second
	}
	if s.SASLMaxReceiveBytes == 0 {
		s.SASLMaxReceiveBytes = 512 << 10
	}
}

// RegisterFlags adds the TLS, SASL and ACL flags, with the defaults a
// zero SecurityConfig takes. Authorize is decided by the command (from
// its listeners), not a flag of its own here.
func (s *SecurityConfig) RegisterFlags(fs *pflag.FlagSet) {
	var d SecurityConfig
	d.setDefaults()
	fs.StringVar(&s.TLSCertFile, "tls-cert", "", "PEM certificate of SSL and SASL_SSL listeners (reloaded when the file changes)")
	fs.StringVar(&s.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&s.TLSClientCAFile, "tls-client-ca", "", "PEM CAs that sign client certificates; a verified certificate's subject becomes the principal")
	fs.BoolVar(&s.TLSRequireClientCert, "tls-require-client-cert", false, "refuse TLS clients without a certificate signed by --tls-client-ca")
	fs.StringSliceVar(&s.SASLMechanisms, "sasl-mechanisms", d.SASLMechanisms, "SASL mechanisms offered on SASL listeners")
	fs.BoolVar(&s.AllowPlainWithoutTLS, "sasl-allow-plain-without-tls", false, "offer PLAIN on SASL_PLAINTEXT listeners, where passwords cross the network in the clear")
	fs.DurationVar(&s.SessionLifetime, "sasl-session-lifetime", 0, "make SASL clients re-authenticate this often (KIP-368); 0 never")
	fs.Int32Var(&s.SASLMaxReceiveBytes, "sasl-server-max-receive-size", d.SASLMaxReceiveBytes, "largest request accepted on a SASL listener before the client authenticates (sasl.server.max.receive.size)")
	fs.DurationVar(&s.FailedAuthDelay, "sasl-failure-delay", d.FailedAuthDelay, "delay before answering a failed authentication")
	fs.StringSliceVar(&s.SuperUsers, "super-users", nil, "principals that bypass ACLs, e.g. User:admin")
	fs.BoolVar(&s.AllowEveryoneIfNoACL, "allow-everyone-if-no-acl-found", false, "allow operations on resources no ACL names (when ACLs are enforced)")
}

func (c *Config) validateListeners() error {
	if len(c.Listeners) == 0 {
		c.Listeners = []ListenerConfig{{Protocol: ProtocolPlaintext, Addr: c.KafkaAddr, Advertise: c.AdvertiseAddr}}
	}
	seen := map[string]bool{}
	needTLS := false
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if seen[l.Protocol] {
			return fmt.Errorf("two %s listeners; an agent has at most one listener per protocol", l.Protocol)
		}
		seen[l.Protocol] = true
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			return fmt.Errorf("%s listener address %q: %w", l.Protocol, l.Addr, err)
		}
		if l.Advertise != "" {
			host, port, err := net.SplitHostPort(l.Advertise)
			if err != nil {
				return fmt.Errorf("%s advertised address %q: %w", l.Protocol, l.Advertise, err)
			}
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				return fmt.Errorf("%s advertised address %q: clients need a host they can reach, not a wildcard", l.Protocol, l.Advertise)
			}
			if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
				return fmt.Errorf("%s advertised address %q: bad port", l.Protocol, l.Advertise)
			}
		}
		needTLS = needTLS || l.TLS()
	}
	sec := &c.Security
	if needTLS && (sec.TLSCertFile == "" || sec.TLSKeyFile == "") {
		return errors.New("an SSL or SASL_SSL listener needs --tls-cert and --tls-key")
	}
	if sec.TLSRequireClientCert && sec.TLSClientCAFile == "" {
		return errors.New("requiring client certificates needs --tls-client-ca")
	}
	for _, m := range sec.SASLMechanisms {
		switch m {
		case "SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN":
		default:
			return fmt.Errorf("SASL mechanism %q is not supported (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN)", m)
		}
	}
	for _, p := range sec.SuperUsers {
		if !strings.Contains(p, ":") {
			return fmt.Errorf("super user %q: write principals as User:NAME", p)
		}
	}
	return nil
}

// certReloader serves the agent's certificate and reloads it when its
// files change, so rotated certificates take effect without a restart.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) reload() error {
	st, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	kst, err := os.Stat(r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS key: %w", err)
	}
	mod := st.ModTime()
	if kst.ModTime().After(mod) {
		mod = kst.ModTime()
	}
	if r.cert != nil && mod.Equal(r.modTime) {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.modTime = &cert, mod
	return nil
}

// getCertificate checks the files at most every few seconds.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) > 2*time.Second {
		r.checked = time.Now()
		// A failed reload keeps serving the last good certificate.
		_ = r.reload()
	}
	return r.cert, nil
}

// serverTLS builds the TLS configuration of SSL and SASL_SSL listeners.
func (s *SecurityConfig) serverTLS() (*tls.Config, error) {
	r, err := newCertReloader(s.TLSCertFile, s.TLSKeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
	if s.TLSClientCAFile != "" {
		pool, err := certs.Pool(s.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if s.TLSRequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}
