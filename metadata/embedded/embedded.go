// Package embedded runs a real etcd server inside the floe process, for
// `floe dev` and for tests that have no external etcd. It is the same etcd
// (go.etcd.io/etcd/server/v3/embed) that runs as a cluster in production,
// configured for a single member on loopback.
//
// embedded imports only etcd; nothing in floe imports it but cmd/floe and
// test helpers.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config configures an embedded etcd.
type Config struct {
	// Dir is the etcd data directory. It is created if missing and reused
	// across restarts, so state survives.
	Dir string
	// ClientAddr is the host:port clients connect to. Empty or port 0
	// picks a free loopback port.
	ClientAddr string
	// MaxTxnOps is etcd's per-transaction operation limit. Zero means 2048,
	// well above etcd's default of 128, so commits of many partitions need
	// fewer splits.
	MaxTxnOps uint
	// QuotaBackendBytes is the backend size quota. Zero means 8 GiB.
	QuotaBackendBytes int64
	// UnsafeNoFsync turns off fsync. Only for tests.
	UnsafeNoFsync bool
}

// Server is a running embedded etcd.
type Server struct {
	etcd     *embed.Etcd
	endpoint string
	closing  *atomic.Bool
}

// Start starts an embedded etcd and waits until it serves clients.
func Start(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded etcd: no data directory")
	}
	clientAddr := cfg.ClientAddr
	if clientAddr == "" {
		clientAddr = "127.0.0.1:0"
	}
	clientURL, err := resolveURL(clientAddr)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd client address %q: %w", clientAddr, err)
	}
	peerURL, err := resolveURL("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded etcd peer address: %w", err)
	}

	ec := embed.NewConfig()
	ec.Name = "floe"
	ec.Dir = cfg.Dir
	// etcd logs errors to stderr; once Close has begun, its complaints
	// about closed listeners are expected and dropped.
	closing := new(atomic.Bool)
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(os.Stderr), zapcore.ErrorLevel)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(&quietCore{Core: core, closing: closing}))
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.MaxTxnOps = cfg.MaxTxnOps
	if ec.MaxTxnOps == 0 {
		ec.MaxTxnOps = 2048
	}
	// Commits carry index entries for many partitions; give them room.
	ec.MaxRequestBytes = 8 * 1024 * 1024
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	if ec.QuotaBackendBytes == 0 {
		ec.QuotaBackendBytes = 8 << 30
	}
	// Keep revision history bounded: floe never reads old revisions except
	// to resume watches, which reload on compaction.
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = "5m"
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd did not become ready within 60s")
	}
	return &Server{etcd: e, endpoint: e.Clients[0].Addr().String(), closing: closing}, nil
}

// Endpoint is the host:port clients connect to.
func (s *Server) Endpoint() string { return s.endpoint }

// Close stops the server and waits until it has released its data
// directory.
func (s *Server) Close() {
	s.closing.Store(true)
	s.etcd.Close()
}

// quietCore drops every log entry once the server is closing.
type quietCore struct {
	zapcore.Core
	closing *atomic.Bool
}

func (c *quietCore) With(fields []zapcore.Field) zapcore.Core {
	return &quietCore{Core: c.Core.With(fields), closing: c.closing}
}

func (c *quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.closing.Load() {
		return ce
	}
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// resolveURL turns host:port into an http URL; port 0 is replaced by a
// free port so the URL can be advertised.
func resolveURL(addr string) (*url.URL, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if port == "0" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		addr = l.Addr().String()
		l.Close()
	}
	return url.Parse("http://" + addr)
}
