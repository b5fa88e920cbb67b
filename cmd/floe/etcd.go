package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/floe-io/floe/metadata/embedded"
)

func newEtcdCmd() *cobra.Command {
	var (
		dataDir string
		listen  string
	)
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Run a single-member etcd (the same server floe dev embeds), for machines without one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := embedded.Start(embedded.Config{Dir: dataDir, ClientAddr: listen})
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Fprintf(os.Stderr, "etcd serving clients on http://%s (data in %s)\n", srv.Endpoint(), dataDir)
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./floe-etcd", "etcd data directory")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:2379", "host:port to serve etcd clients on")
	return cmd
}
