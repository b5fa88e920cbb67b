package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// etcdFlags are how `floe agent` and `floe compactor` reach etcd.
type etcdFlags struct {
	endpoints []string
	username  string
	password  string
	caFile    string
	certFile  string
	keyFile   string
}

func (f *etcdFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.endpoints, "etcd-endpoints", nil, "etcd client URLs, comma-separated (https:// with --etcd-ca)")
	fs.StringVar(&f.username, "etcd-username", "", "etcd user, when etcd authentication is on")
	fs.StringVar(&f.password, "etcd-password", "", "etcd password (prefer FLOE_ETCD_PASSWORD)")
	fs.StringVar(&f.caFile, "etcd-ca", "", "PEM CA of etcd's server certificates (TLS to etcd)")
	fs.StringVar(&f.certFile, "etcd-cert", "", "PEM client certificate for etcd (client-certificate authentication)")
	fs.StringVar(&f.keyFile, "etcd-key", "", "PEM private key of --etcd-cert")
}

// registerEtcdMaxTxnOps declares --etcd-max-txn-ops, by which agents and
// the compactor size their transactions, into ops.
func registerEtcdMaxTxnOps(fs *pflag.FlagSet, ops *int) {
	fs.IntVar(ops, "etcd-max-txn-ops", metadata.DefaultMaxTxnOps, "etcd's --max-txn-ops; transactions are split to fit it")
}

// dial connects to etcd; the error is one line and never holds the
// password.
func (f *etcdFlags) dial(ctx context.Context) (*clientv3.Client, error) {
	if len(f.endpoints) == 0 {
		return nil, errors.New("--etcd-endpoints is required (for example http://127.0.0.1:2379)")
	}
	cfg := metadata.DialConfig{Endpoints: f.endpoints, Username: f.username, Password: f.password}
	if f.caFile != "" || f.certFile != "" || f.keyFile != "" || anyHTTPS(f.endpoints) {
		tc, err := clientTLS("--etcd", f.caFile, f.certFile, f.keyFile)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	cli, err := metadata.Dial(ctx, cfg)
	if err != nil && f.password != "" {
		// Never let a credential reach a log line.
		return nil, errors.New(strings.ReplaceAll(err.Error(), f.password, "<redacted>"))
	}
	return cli, err
}

func anyHTTPS(endpoints []string) bool {
	for _, e := range endpoints {
		if strings.HasPrefix(e, "https://") {
			return true
		}
	}
	return false
}

// String redacts the password, so the flags can be logged.
func (f etcdFlags) String() string {
	return strings.Join(f.endpoints, ",")
}

// connectCluster dials etcd and opens the bucket, as `floe agent` and
// `floe compactor` do; closeAll releases both.
func connectCluster(ctx context.Context, log *slog.Logger, etcd *etcdFlags, cluster, bucketURL string) (*metadata.Store, segments.Bucket, func(), error) {
	cli, err := etcd.dial(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	vctx, vcancel := context.WithTimeout(ctx, 5*time.Second)
	advice, err := metadata.EtcdVersionAdvice(vctx, cli)
	vcancel()
	for _, a := range advice {
		log.Warn(a)
	}
	if err != nil {
		// The version is advice, not a requirement (a proxy in front of
		// etcd may not answer Status).
		log.Debug("could not read etcd's version", "err", err)
	}
	store, err := metadata.NewStore(cli, cluster)
	if err != nil {
		cli.Close()
		return nil, nil, nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	bucket, err := segments.OpenBucket(bctx, bucketURL, segments.BucketOptions{})
	cancel()
	if err != nil {
		cli.Close()
		return nil, nil, nil, err
	}
	return store, bucket, func() {
		bucket.Close()
		cli.Close()
	}, nil
}
