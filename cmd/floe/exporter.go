package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/floe-io/floe/exporter"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

func newExporterCmd() *cobra.Command {
	var (
		cfg       exporter.Config
		bucketURL string
		etcd      etcdFlags
		cluster   string
		httpAddr  string
		once      bool
	)
	cmd := &cobra.Command{
		Use:   "exporter",
		Short: "Run the Iceberg exporter: topics with floe.iceberg.enabled=true become Iceberg tables",
		Long: `Run the floe exporter. Every topic with floe.iceberg.enabled=true is
exported to an Iceberg table (floe.iceberg.table, default floe.<topic>):
its committed records (below the last stable offset; aborted transactions
never), one row each, exactly once, committed every
floe.iceberg.commit.interval.ms (default 60s). See docs/iceberg.md.

--catalog names the Iceberg catalog:
  sqlite:///var/lib/floe/catalog.db          a SQLite file
  postgres://floe@db:5432/iceberg            PostgreSQL (password in PGPASSWORD)
  rest+https://catalog.example.com/api       an Iceberg REST catalog
                                             (FLOE_ICEBERG_REST_TOKEN or
                                             FLOE_ICEBERG_REST_CREDENTIAL)
Tables' files go under --warehouse, by default iceberg/ in the cluster's
own bucket (the compactor never touches them).

Topics whose floe.iceberg.value.format is avro or protobuf (or json
without an inline schema) take their columns from a Confluent-compatible
schema registry, --schema-registry-url.

Run as many replicas as you like: they elect one active exporter through
etcd. --once exports what every exporting topic has, as the active
exporter, and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger()
			if err != nil {
				return err
			}
			if bucketURL == "" {
				return fmt.Errorf("--bucket is required (the agents' bucket URL)")
			}
			if cfg.Catalog == "" {
				return fmt.Errorf("--catalog is required (for example sqlite:///var/lib/floe/catalog.db)")
			}
			ctx := cmd.Context()
			store, bucket, closeAll, err := connectCluster(ctx, log, &etcd, cluster, bucketURL)
			if err != nil {
				return err
			}
			defer closeAll()
			var onceTo io.Writer
			if once {
				onceTo = cmd.ErrOrStderr()
			}
			r, err := startExporter(ctx, log, cfg, bucketURL, store, bucket, httpAddr, nil, onceTo)
			if err != nil {
				return err
			}
			if once {
				return r.wait()
			}
			log.Info("floe exporter started", "id", r.x.ID(), "catalog", segments.RedactURL(cfg.Catalog), "warehouse", r.warehouse, "http", r.HTTPAddr(), "cluster", cluster)
			<-ctx.Done()
			log.Info("shutting down: resigning")
			r.stop()
			return nil
		},
	}
	fs := cmd.Flags()
	etcd.register(fs)
	registerEtcdMaxTxnOps(fs, &cfg.EtcdMaxTxnOps)
	fs.StringVar(&bucketURL, "bucket", "", "object store URL of the segment objects, as for floe agent")
	fs.StringVar(&cluster, "cluster", "default", "cluster name: the etcd key prefix /floe/<cluster>/, as for floe agent")
	fs.StringVar(&cfg.Catalog, "catalog", "", "the Iceberg catalog: sqlite:PATH, postgres://..., rest+https://...")
	fs.StringVar(&cfg.Warehouse, "warehouse", "", "where tables' files go: s3://bucket/prefix or file:///dir (default iceberg/ in --bucket, with its endpoint and credentials)")
	fs.StringVar(&httpAddr, "http-addr", "127.0.0.1:9646", "host:port of the HTTP listener (/healthz, /metrics); empty disables it")
	fs.StringVar(&cfg.ID, "id", "", "this exporter's name in the election and logs (default a random one)")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", 10*time.Second, "how long a dead exporter's leadership outlives it")
	fs.Int64Var(&cfg.MaxCommitBytes, "max-commit-bytes", 128<<20, "most record bytes one commit of a topic takes (held in memory until written)")
	fs.IntVar(&cfg.Parallelism, "parallelism", 2, "how many topics are exported at once, each holding up to --max-commit-bytes")
	fs.Int64Var(&cfg.TargetFileBytes, "target-file-bytes", 128<<20, "Parquet file size new tables are written toward (write.target-file-size-bytes)")
	fs.BoolVar(&once, "once", false, "export every exporting topic once, as the active exporter, and exit")
	fs.StringVar(&cfg.SchemaRegistryURL, "schema-registry-url", "", "the Confluent-compatible schema registry of topics whose floe.iceberg.value.format is avro or protobuf (or json without an inline schema), e.g. http://registry:8081")
	fs.StringVar(&cfg.SchemaRegistryUserInfo, "schema-registry-user-info", "", "user:password for the schema registry's HTTP Basic authentication (as Confluent's basic.auth.user.info)")
	fs.StringVar(&cfg.SchemaRegistryToken, "schema-registry-bearer-token", "", "a bearer token for the schema registry, sent without --schema-registry-user-info")
	fs.StringVar(&cfg.SchemaRegistryCAFile, "schema-registry-ca-file", "", "PEM CAs to check an https schema registry's certificate against (default: the system's)")
	return cmd
}

// runningExporter is an exporter running in its own goroutine, with its
// HTTP listener.
type runningExporter struct {
	x         *exporter.Exporter
	cat       exporter.Catalog
	warehouse string
	cancel    context.CancelFunc
	done      chan struct{} // closed when Run (or the one pass) has returned
	err       error         // of the one pass
	http      *httpListener
}

// startExporter opens the catalog and starts an exporter, and an HTTP
// listener on httpAddr unless it is empty. Its metrics go to reg, or to a
// registry of its own when reg is nil. With once it runs one pass
// as the leader, and writes what it did there (wait reports it). stop
// ends it.
func startExporter(ctx context.Context, log *slog.Logger, cfg exporter.Config, bucketURL string, store *metadata.Store, bucket segments.Bucket, httpAddr string, reg *prometheus.Registry, once io.Writer) (*runningExporter, error) {
	wh, props, err := exporter.WarehouseOf(bucketURL, segments.BucketOptions{})
	if err != nil {
		return nil, err
	}
	if cfg.Warehouse == "" {
		cfg.Warehouse = wh
	} else {
		props = nil // a warehouse elsewhere brings its own settings (AWS_* for S3)
	}
	cfg.IOProps = props
	cat, err := exporter.OpenCatalog(ctx, cfg.Catalog, props)
	if err != nil {
		return nil, err
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	x, err := exporter.New(cfg, exporter.Deps{Store: store, Bucket: bucket, Catalog: cat, Log: log, Registry: reg})
	if err != nil {
		cat.Close()
		return nil, err
	}
	r := &runningExporter{x: x, cat: cat, warehouse: cfg.Warehouse, done: make(chan struct{})}
	if httpAddr != "" {
		if r.http, err = serveHTTP(log, httpAddr, electedRoleMux(x.Leading, reg)); err != nil {
			cat.Close()
			return nil, err
		}
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	go func() {
		defer close(r.done)
		if once != nil {
			st, err := x.RunOnce(cctx)
			if err == nil {
				fmt.Fprintf(once, "export pass done: %d commits, %d rows (%d dead letters)\n", st.Commits, st.Rows, st.DeadLetters)
			}
			r.err = err
			return
		}
		x.Run(cctx)
	}()
	return r, nil
}

// HTTPAddr is the bound HTTP address, or "" when disabled.
func (r *runningExporter) HTTPAddr() string { return r.http.Addr() }

// wait waits for the one pass and reports it.
func (r *runningExporter) wait() error {
	<-r.done
	r.stop()
	if r.err != nil {
		return exitError{code: 1, err: r.err}
	}
	return nil
}

// stop ends the exporter, resigning, and closes its listener and catalog.
func (r *runningExporter) stop() {
	r.cancel()
	<-r.done
	r.http.close()
	r.cat.Close()
}

// electedRoleMux serves an elected role's (the compactor's, the
// exporter's) /healthz and /metrics. A standby is healthy too: it is ready
// to take over.
func electedRoleMux(leading func() bool, reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if leading() {
			fmt.Fprintln(w, "ok: active")
		} else {
			fmt.Fprintln(w, "ok: standby")
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// httpListener is a started HTTP server.
type httpListener struct {
	srv    *http.Server
	ln     net.Listener
	served chan struct{}
}

// serveHTTP serves h on addr until close.
func serveHTTP(log *slog.Logger, addr string, h http.Handler) (*httpListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listener on %s: %w", addr, err)
	}
	l := &httpListener{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln, served: make(chan struct{})}
	go func() {
		defer close(l.served)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http listener failed", "err", err)
		}
	}()
	return l, nil
}

// Addr is the bound address ("" for a nil listener).
func (l *httpListener) Addr() string {
	if l == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// close shuts the server down (nothing for a nil listener).
func (l *httpListener) close() {
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	l.srv.Shutdown(ctx)
	cancel()
	<-l.served
}
