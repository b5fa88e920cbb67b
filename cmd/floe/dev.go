package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/floe-io/floe/exporter"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/metadata/embedded"
	"github.com/floe-io/floe/segments"
)

func newDevCmd() *cobra.Command {
	var (
		o        agentOptions
		dataDir  string
		etcdAddr string
		iceberg  string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a single-process floe for local use: embedded etcd, a local bucket, one agent",
		Long: `Run everything floe needs in one process, for trying it out and for local
development: a real etcd embedded in the process, a bucket in a local
directory, and one agent with topic auto-creation on. State lives under
--data-dir and survives restarts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger()
			if err != nil {
				return err
			}
			// The dev compactor's grace is a minute: a flush older than
			// half of it is failed rather than committed (the commit
			// would be refused at the doom mark or the collector's
			// horizon anyway).
			if grace := devCompactorConfig(&o).GCGrace; !cmd.Flags().Changed("max-commit-delay") {
				o.cfg.Writer.MaxCommitDelay = grace / 2
			} else if o.cfg.Writer.MaxCommitDelay >= grace {
				return fmt.Errorf("--max-commit-delay %v: must be below the dev compactor's GC grace (%v), or late flushes fail at commit", o.cfg.Writer.MaxCommitDelay, grace)
			}
			ctx := cmd.Context()
			abs, err := filepath.Abs(dataDir)
			if err != nil {
				return fmt.Errorf("--data-dir %q: %w", dataDir, err)
			}
			if err := os.MkdirAll(abs, 0o755); err != nil {
				return fmt.Errorf("creating data directory: %w", err)
			}

			etcd, err := embedded.Start(embedded.Config{Dir: filepath.Join(abs, "etcd"), ClientAddr: etcdAddr, MaxTxnOps: 2048})
			if err != nil {
				return err
			}
			defer etcd.Close()
			endpoint := "http://" + etcd.Endpoint()

			cli, err := metadata.Dial(ctx, metadata.DialConfig{Endpoints: []string{endpoint}})
			if err != nil {
				return err
			}
			defer cli.Close()
			if !cmd.Flags().Changed("etcd-max-txn-ops") {
				o.etcdMaxTxnOps = 2048 // the embedded etcd allows large transactions
			}
			store, err := metadata.NewStore(cli, o.cluster)
			if err != nil {
				return err
			}
			bucketURL := "file://" + filepath.Join(abs, "bucket")
			bucket, err := segments.OpenBucket(ctx, bucketURL, segments.BucketOptions{})
			if err != nil {
				return err
			}
			defer bucket.Close()

			r, err := startAgent(ctx, log, &o, store, bucket)
			if err != nil {
				return err
			}
			// Retention, merging and garbage collection, checked every 10s.
			comp, err := startCompactor(ctx, log, devCompactorConfig(&o), store, bucket, "")
			if err != nil {
				r.stop(o.cfg.DrainTimeout + 5*time.Second)
				return err
			}
			// Topics with floe.iceberg.enabled=true become tables in a
			// SQLite catalog beside the data, their files in the bucket;
			// the exporter's metrics are the agent's /metrics, and it
			// reads value schemas from the dev registry.
			if iceberg == "" {
				iceberg = "sqlite://" + filepath.Join(abs, "iceberg-catalog.db")
			}
			expCfg := exporter.Config{Catalog: iceberg, ID: "dev", Tick: time.Second, EtcdMaxTxnOps: o.etcdMaxTxnOps, SchemaRegistryURL: r.RegistryURL(o.httpTLS)}
			if o.httpTLS {
				expCfg.SchemaRegistryCAFile = o.cfg.Security.TLSCertFile
			}
			// A registry behind authentication takes the bootstrap user
			// or the first HTTP token.
			if len(o.httpTokens) > 0 {
				expCfg.SchemaRegistryToken = o.httpTokens[0]
			}
			if o.bootstrapUser != "" {
				expCfg.SchemaRegistryUserInfo = o.bootstrapUser
			}
			exp, err := startExporter(ctx, log, expCfg, bucketURL, store, bucket, "", r.reg, nil)
			if err != nil {
				comp.stop()
				r.stop(o.cfg.DrainTimeout + 5*time.Second)
				return err
			}
			printDevBanner(r.agent.AdvertisedAddr(), r.HTTPAddr(), r.RegistryURL(o.httpTLS), endpoint, abs, iceberg)
			<-ctx.Done()
			log.Info("shutting down")
			exp.stop()
			comp.stop()
			return r.stop(o.cfg.DrainTimeout + 5*time.Second)
		},
	}
	fs := cmd.Flags()
	o.register(fs, true)
	o.registerSchemaRegistry(fs, "127.0.0.1:8081")
	fs.StringVar(&dataDir, "data-dir", "./floe-data", "directory for the embedded etcd and the local bucket")
	fs.StringVar(&etcdAddr, "etcd-addr", "127.0.0.1:2379", "host:port the embedded etcd serves clients on (port 0 picks a free one)")
	fs.StringVar(&iceberg, "iceberg-catalog", "", "the Iceberg catalog topics with floe.iceberg.enabled=true are exported to (default sqlite://<data-dir>/iceberg-catalog.db)")
	return cmd
}

func printDevBanner(kafka, http, registry, etcd, dir, iceberg string) {
	if registry == "" {
		registry = "off"
	} else {
		registry += "  (Confluent-compatible; schema.registry.url; docs/schema-registry.md)"
	}
	fmt.Fprintf(os.Stderr, `
floe dev is running.

  Kafka     %s
  HTTP      http://%s  (/healthz, /readyz, /metrics, /v1/groups)
  Registry  %s
  etcd      %s  (embedded)
  data      %s
  Iceberg   %s  (topics with floe.iceberg.enabled=true; docs/iceberg.md)

Try it with kcat:
  kcat -b %s -L
  echo hello | kcat -b %s -t demo -P
  kcat -b %s -t demo -C -e

Ctrl-C stops it; the data stays in %s.

`, kafka, http, registry, etcd, dir, iceberg, kafka, kafka, kafka, dir)
}
