package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type globalOptions struct {
	logLevel  string
	logFormat string
}

var globals globalOptions

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "floe",
		Short: "A Kafka-compatible log service on object storage",
		Long: `floe is a Kafka-compatible log service for clouds without local disks.
Stateless agents speak the Kafka protocol, batch records into segment
objects in S3 or MinIO, and keep offsets, topics and groups in etcd.

Every flag can also be set through an environment variable: FLOE_ and the
flag name in upper case with dashes as underscores (--etcd-endpoints is
FLOE_ETCD_ENDPOINTS).

topic, produce, consume, group, txn and lag work with any Kafka-compatible
cluster through the Kafka protocol: -b/--brokers (FLOE_BROKERS) names it,
127.0.0.1:9092 by default. They print tables, or JSON with -o json, and
exit with status 0 on success, 1 on failure (the message says what to do),
and 2 when the command line is wrong (unknown flag or subcommand, bad
value, missing argument).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return applyEnv(cmd)
		},
	}
	root.PersistentFlags().StringVar(&globals.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&globals.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(newDevCmd(), newAgentCmd(), newEtcdCmd(), newVersionCmd())
	root.AddCommand(newHealthCmd())
	root.AddCommand(newTopicCmd())
	root.AddCommand(newProduceCmd())
	root.AddCommand(newConsumeCmd())
	root.AddCommand(newGroupCmd())
	root.AddCommand(newTxnCmd())
	root.AddCommand(newLagCmd())
	root.AddCommand(newCompactorCmd())
	root.AddCommand(newClusterCmd())
	root.AddCommand(newExporterCmd())
	root.AddCommand(newUserCmd(), newACLCmd())
	root.AddCommand(newBenchCmd())
	return root
}

// applyEnv sets every flag the command line left unset from its FLOE_*
// environment variable.
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "FLOE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if serr := cmd.Flags().Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment variable %s=%q: %v", name, v, serr)
		}
	})
	return err
}

func newLogger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(globals.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", globals.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch globals.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", globals.logFormat)
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print floe's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Println("floe", version)
		},
	}
}
