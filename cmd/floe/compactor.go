package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/floe-io/floe/compactor"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
	"github.com/floe-io/floe/segments/instrumented"
)

// retentionDefaults are the cluster's topic defaults the compactor
// enforces and the agents report: one declaration of their flags for
// both, so one set of FLOE_* variables configures both.
type retentionDefaults struct {
	retentionMs    int64
	retentionBytes int64
	cleanupPolicy  string
}

func (r *retentionDefaults) register(fs *pflag.FlagSet) {
	fs.Int64Var(&r.retentionMs, "log-retention-ms", 7*24*3600*1000, "default retention.ms of topics; -1 keeps data forever (log.retention.ms); the same on agents and the compactor")
	fs.Int64Var(&r.retentionBytes, "log-retention-bytes", -1, "default retention.bytes per partition; -1 means no limit (log.retention.bytes); the same on agents and the compactor")
	fs.StringVar(&r.cleanupPolicy, "log-cleanup-policy", "delete", "default cleanup.policy of topics (log.cleanup.policy); the same on agents and the compactor")
}

func (r *retentionDefaults) broker() metadata.BrokerConfig {
	return metadata.BrokerConfig{
		"log.retention.ms":    strconv.FormatInt(r.retentionMs, 10),
		"log.retention.bytes": strconv.FormatInt(r.retentionBytes, 10),
		"log.cleanup.policy":  r.cleanupPolicy,
	}
}

func newCompactorCmd() *cobra.Command {
	var (
		cfg       compactor.Config
		defaults  retentionDefaults
		bucketURL string
		etcd      etcdFlags
		cluster   string
		httpAddr  string
		once      bool
	)
	cmd := &cobra.Command{
		Use:   "compactor",
		Short: "Run the compactor: retention, merging small segment objects, deleting unreferenced ones",
		Long: `Run the floe compactor. It enforces retention (retention.ms, retention.bytes,
and the log start DeleteRecords sets), merges the shard log entries of
agents' flushes into few large objects (shared by many partitions; a
partition with enough data gets its own), and deletes objects no log entry
references once they are older than --gc-grace.

Run as many replicas as you like: they elect one active compactor through
etcd, and every write it makes is fenced by that election. --once runs a
single pass as the active compactor and exits (for cron); it fails with
one line, and exit status 1, if another compactor is running or the pass
fails.

It needs the same --bucket, --cluster and etcd as the agents, and the
same topic defaults (--log-retention-ms, --log-retention-bytes,
--log-cleanup-policy). The bucket is a URL, as for floe agent, and must
belong to this cluster alone: every segment object in it that the
cluster's index does not reference is deleted once older than --gc-grace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger()
			if err != nil {
				return err
			}
			if bucketURL == "" {
				return fmt.Errorf("--bucket is required (for example s3://my-bucket/floe?region=us-east-1)")
			}
			cfg.Broker = defaults.broker()
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			store, bucket, closeAll, err := connectCluster(ctx, log, &etcd, cluster, bucketURL)
			if err != nil {
				return err
			}
			defer closeAll()

			if once {
				c, err := compactor.New(cfg, compactor.Deps{Store: store, Bucket: bucket, Log: log})
				if err != nil {
					return err
				}
				st, err := c.RunOnce(ctx)
				if err != nil {
					return exitError{code: 1, err: err}
				}
				fmt.Fprintf(os.Stderr, "compaction pass done in %v: %d shards, %d partitions (%d behind retention), %d extents and %d log entries removed by retention, %d merges of %d entries into %d objects, %d objects deleted (%d unreferenced, %d listed), %d errors\n",
					st.Duration.Round(time.Millisecond), st.Shards, st.Partitions, st.Behind, st.RetentionExtents, st.RetentionEntries, st.Merges, st.MergedEntries, st.ObjectsWritten, st.Deleted, st.Unreferenced, st.Objects, st.Errors)
				if st.Errors > 0 {
					return exitError{code: 1, err: fmt.Errorf("the pass had %d errors; the log names them", st.Errors)}
				}
				return nil
			}

			r, err := startCompactor(ctx, log, cfg, store, bucket, httpAddr)
			if err != nil {
				return err
			}
			log.Info("floe compactor started", "id", cfg.ID, "http", r.HTTPAddr(), "bucket", segments.RedactURL(bucketURL),
				"etcd", etcd.String(), "cluster", cluster, "interval", cfg.RetentionCheckInterval, "gc_grace", cfg.GCGrace)
			<-ctx.Done()
			log.Info("shutting down: resigning")
			r.stop()
			return nil
		},
	}
	fs := cmd.Flags()
	cfg.RegisterFlags(fs)
	registerEtcdMaxTxnOps(fs, &cfg.EtcdMaxTxnOps)
	defaults.register(fs)
	etcd.register(fs)
	fs.StringVar(&bucketURL, "bucket", "", "object store URL of the segment objects, as for floe agent")
	fs.StringVar(&cluster, "cluster", "default", "cluster name: the etcd key prefix /floe/<cluster>/, as for floe agent")
	fs.StringVar(&httpAddr, "http-addr", "127.0.0.1:9645", "host:port of the HTTP listener (/healthz, /metrics); empty disables it")
	fs.StringVar(&cfg.ID, "id", "", "this compactor's name in the election and logs (default <hostname>-<pid>)")
	fs.BoolVar(&once, "once", false, "run one pass as the active compactor and exit")
	return cmd
}

// runningCompactor is a compactor running in its own goroutine, with its
// HTTP listener.
type runningCompactor struct {
	c      *compactor.Compactor
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	http   *httpListener
}

// startCompactor starts a compactor, and an HTTP listener on httpAddr
// unless it is empty. stop ends both.
func startCompactor(ctx context.Context, log *slog.Logger, cfg compactor.Config, store *metadata.Store, bucket segments.Bucket, httpAddr string) (*runningCompactor, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bucket = instrumented.Wrap(bucket, reg, instrumented.Options{})
	c, err := compactor.New(cfg, compactor.Deps{Store: store, Bucket: bucket, Log: log, Registry: reg})
	if err != nil {
		return nil, err
	}
	r := &runningCompactor{c: c, done: make(chan struct{})}
	if httpAddr != "" {
		if r.http, err = serveHTTP(log, httpAddr, electedRoleMux(c.Leading, reg)); err != nil {
			return nil, err
		}
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	go func() {
		defer close(r.done)
		c.Run(cctx)
	}()
	return r, nil
}

// HTTPAddr is the bound HTTP address, or "" when disabled.
func (r *runningCompactor) HTTPAddr() string { return r.http.Addr() }

// stop ends the compactor's pass, resigns, and closes the HTTP listener.
func (r *runningCompactor) stop() {
	r.cancel()
	<-r.done
	r.http.close()
}

// devCompactorConfig is the compactor floe dev runs: the agent's topic
// defaults, a short check interval and grace so retention is visible in
// minutes.
func devCompactorConfig(o *agentOptions) compactor.Config {
	return compactor.Config{
		ID:                     "dev",
		RetentionCheckInterval: 10 * time.Second,
		GCGrace:                time.Minute,
		EtcdMaxTxnOps:          o.etcdMaxTxnOps,
		Broker:                 o.topics.broker(),
	}
}
