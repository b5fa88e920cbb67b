package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/floe-io/floe/segments"
)

func newAgentCmd() *cobra.Command {
	var (
		o         agentOptions
		bucketURL string
		etcd      etcdFlags
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a floe agent: a stateless Kafka-protocol server",
		Long: `Run a floe agent. Agents are stateless: run as many as you like behind one
bootstrap address. Each one registers in etcd under a lease, serves any
produce or fetch, and writes records into segment objects in the bucket.

The bucket is a URL:
  s3://BUCKET/PREFIX?region=REGION                      AWS S3 (standard credential chain)
  s3://BUCKET/PREFIX?endpoint=http://HOST:9000&path-style=true   S3-compatible stores
  minio://HOST:9000/BUCKET/PREFIX?secure=false          MinIO (MINIO_ACCESS_KEY / MINIO_SECRET_KEY)
  file:///var/lib/floe                                  a local directory (one machine only)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger()
			if err != nil {
				return err
			}
			if bucketURL == "" {
				return fmt.Errorf("--bucket is required (for example s3://my-bucket/floe?region=us-east-1)")
			}
			ctx := cmd.Context()
			store, bucket, closeAll, err := connectCluster(ctx, log, &etcd, o.cluster, bucketURL)
			if err != nil {
				return err
			}
			defer closeAll()
			r, err := startAgent(ctx, log, &o, store, bucket)
			if err != nil {
				return err
			}
			log.Info("floe agent started", "kafka", r.agent.AdvertisedAddr(), "http", r.HTTPAddr(), "schema_registry", r.RegistryURL(o.httpTLS), "bucket", segments.RedactURL(bucketURL), "etcd", etcd.String(), "cluster", o.cluster)
			<-ctx.Done()
			log.Info("shutting down: draining connections")
			return r.stop(o.cfg.DrainTimeout + 5*time.Second)
		},
	}
	fs := cmd.Flags()
	o.register(fs, false)
	o.registerSchemaRegistry(fs, "")
	etcd.register(fs)
	fs.StringVar(&bucketURL, "bucket", "", "object store URL for segment objects (see above)")
	return cmd
}
