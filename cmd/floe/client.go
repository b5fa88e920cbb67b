package main

// The client commands (topic, produce, consume, group, txn, lag) talk to any
// Kafka-compatible cluster through the Kafka protocol with franz-go. This
// file holds what they share: the connection flags, building a client that
// fails fast with an error a person can act on, usage errors (exit status
// 2), terminal detection and confirmation prompts.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/floe-io/floe/internal/certs"
)

// Exit statuses of the client commands, documented in `floe --help`.
const (
	exitFailure = 1 // the command ran and failed; the message says why
	exitUsage   = 2 // the command line was wrong
)

const defaultBrokers = "127.0.0.1:9092"

// clientFlags are the connection flags every client command takes.
type clientFlags struct {
	brokers        []string
	connectTimeout time.Duration

	tls          bool
	tlsCA        string
	tlsCert      string
	tlsKey       string
	saslMech     string
	saslUser     string
	saslPassword string
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVarP(&f.brokers, "brokers", "b", []string{defaultBrokers}, "bootstrap brokers, host:port, comma-separated (any Kafka-compatible cluster)")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 5*time.Second, "give up when no broker answers within this long")
	fs.BoolVar(&f.tls, "tls", false, "connect with TLS (SSL or SASL_SSL listeners); implied by --tls-ca and --tls-cert")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM CA that signs the brokers' certificates (default: the system's)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM client certificate, for brokers that authenticate clients by certificate")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&f.saslMech, "sasl-mechanism", "", "SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (needs --sasl-user)")
	fs.StringVar(&f.saslUser, "sasl-user", "", "SASL user")
	fs.StringVar(&f.saslPassword, "sasl-password", "", "SASL password (prefer the FLOE_SASL_PASSWORD environment variable)")
}

// clientTLS is the TLS configuration of a client whose flags are
// flag+"-ca", flag+"-cert" and flag+"-key": the servers' CA (the system's
// if ca is empty) and a client certificate (none if cert and key are
// empty). Errors name the flags.
func clientTLS(flag, ca, cert, key string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pool, err := certs.Pool(ca)
		if err != nil {
			return nil, fmt.Errorf("%s-ca: %v", flag, err)
		}
		cfg.RootCAs = pool
	}
	if cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s-cert/%s-key: %v", flag, flag, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// securityOpts turns the TLS and SASL flags into client options.
func (f *clientFlags) securityOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if f.tls || f.tlsCA != "" || f.tlsCert != "" {
		cfg, err := clientTLS("--tls", f.tlsCA, f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, exitError{code: exitUsage, err: err}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if f.saslMech == "" && f.saslUser == "" {
		return opts, nil
	}
	if f.saslUser == "" || f.saslPassword == "" {
		return nil, exitError{code: exitUsage, err: errors.New("SASL needs --sasl-user and --sasl-password (or FLOE_SASL_PASSWORD)")}
	}
	mech := strings.ToUpper(f.saslMech)
	if mech == "" {
		mech = "SCRAM-SHA-512"
	}
	switch mech {
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: f.saslUser, Pass: f.saslPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: f.saslUser, Pass: f.saslPassword}.AsSha512Mechanism()))
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: f.saslUser, Pass: f.saslPassword}.AsMechanism()))
	default:
		return nil, exitError{code: exitUsage, err: fmt.Errorf("--sasl-mechanism %q: use SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN", f.saslMech)}
	}
	return opts, nil
}

// client returns a franz-go client that has reached at least one broker.
// The caller closes it.
func (f *clientFlags) client(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	brokers := make([]string, 0, len(f.brokers))
	for _, b := range f.brokers {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		return nil, exitError{code: exitUsage, err: errors.New("-b/--brokers is empty: pass host:port of a broker, e.g. -b 127.0.0.1:9092")}
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("floe-cli"),
		kgo.DialTimeout(f.connectTimeout),
	}
	sec, err := f.securityOpts()
	if err != nil {
		return nil, err
	}
	base = append(base, sec...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, exitError{code: exitUsage, err: fmt.Errorf("-b/--brokers %s: %v", strings.Join(brokers, ","), err)}
	}
	pctx, cancel := context.WithTimeout(ctx, f.connectTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ke *kerr.Error
		if errors.As(err, &ke) {
			// Reached, but refused (authentication, authorization).
			return nil, explain(strings.Join(brokers, ","), err, "")
		}
		return nil, unreachable(brokers, err)
	}
	return cl, nil
}

// admin returns an admin client that has reached a broker; closing it
// closes the underlying client.
func (f *clientFlags) admin(ctx context.Context) (*kadm.Client, error) {
	cl, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

func unreachable(brokers []string, err error) error {
	hint := "is floe running? start one with `go run ./cmd/floe dev`, or point -b/--brokers (or FLOE_BROKERS) at your cluster"
	if errors.Is(err, context.DeadlineExceeded) {
		err = errors.New("no answer")
	}
	return fmt.Errorf("cannot reach %s (%v): %s", strings.Join(brokers, ","), err, hint)
}

// explain turns an error from a Kafka request into one that says what to
// do. subject names what the request was about ("topic \"orders\"").
// brokerMsg is the broker's own error message, if any.
func explain(subject string, err error, brokerMsg string) error {
	if err == nil {
		return nil
	}
	detail := ""
	if brokerMsg != "" && !strings.Contains(err.Error(), brokerMsg) {
		detail = ": " + brokerMsg
	}
	var ke *kerr.Error
	var ne *net.OpError
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("%s does not exist%s (list topics with `floe topic list`)", subject, detail)
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("%s already exists", subject)
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("%s does not exist (list groups with `floe group list`)", subject)
	case errors.Is(err, kerr.TransactionalIDNotFound):
		return fmt.Errorf("%s does not exist (list transactional IDs with `floe txn list`)", subject)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("%s has active members: stop its consumers first (see `floe group describe`)", subject)
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("%s: authentication failed: check --sasl-user and --sasl-password (or FLOE_SASL_PASSWORD)%s", subject, detail)
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("%s: the listener does not accept that SASL mechanism (%v); try another --sasl-mechanism, or --tls for PLAIN", subject, err)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return fmt.Errorf("%s: not authorized (%v)%s", subject, err, detail)
	case errors.As(err, &ne):
		return fmt.Errorf("%s: %v: a broker the cluster advertises cannot be reached; check its advertised address (floe agent --advertise-addr)", subject, err)
	case errors.As(err, &ke):
		return fmt.Errorf("%s: %s%s", subject, ke.Message, detailOrDescription(detail, ke))
	}
	return fmt.Errorf("%s: %w", subject, err)
}

func detailOrDescription(detail string, ke *kerr.Error) string {
	if detail != "" {
		return detail
	}
	if ke.Description != "" {
		return ": " + ke.Description
	}
	return ""
}

// clientCommand sets up a client command (or a parent of client commands):
// flag errors and argument errors exit with status 2, and flags come from
// FLOE_* environment variables as for every floe command, except the ones
// annotated noEnv, which must be given on the command line.
func clientCommand(cmd *cobra.Command) *cobra.Command {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError(c, "%v", err)
	})
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		return applyEnvExcept(c)
	}
	return cmd
}

// noEnv is the flag annotation that keeps a flag out of the environment:
// a destructive action (--yes, --execute) must be asked for on the command
// line, never by a variable left in a shell.
const noEnv = "floe-no-env"

func markNoEnv(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, noEnv, []string{"true"}); err != nil {
			panic(err)
		}
	}
}

// applyEnvExcept is applyEnv, then undoes what it set for noEnv flags.
func applyEnvExcept(cmd *cobra.Command) error {
	given := map[string]bool{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if _, ok := f.Annotations[noEnv]; ok {
			given[f.Name] = f.Changed
		}
	})
	if err := applyEnv(cmd); err != nil {
		return exitError{code: exitUsage, err: err}
	}
	for name, changed := range given {
		f := cmd.Flags().Lookup(name)
		if !changed && f.Changed {
			if err := f.Value.Set(f.DefValue); err != nil {
				return err
			}
			f.Changed = false
		}
	}
	return nil
}

// usageError is an exit-status-2 error that points at the command's help.
func usageError(cmd *cobra.Command, format string, a ...any) error {
	return exitError{code: exitUsage, err: fmt.Errorf("%s\nRun '%s --help' for usage.", fmt.Sprintf(format, a...), cmd.CommandPath())}
}

// argsRange checks the number of positional arguments (hi < 0: no upper
// bound), naming what is missing.
func argsRange(lo, hi int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < lo:
			return usageError(cmd, "missing %s: usage: %s", names, cmd.UseLine())
		case hi >= 0 && len(args) > hi:
			return usageError(cmd, "unexpected argument %q: usage: %s", args[hi], cmd.UseLine())
		}
		return nil
	}
}

// parentRunE is the RunE of a command that only groups subcommands: with no
// arguments it shows help, with an unknown subcommand it is a usage error.
func parentRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(cmd, "unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
}

// isTerminal reports whether r is an interactive terminal. It is a
// variable so tests can pretend.
var isTerminal = func(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// /dev/null is a character device too, but nobody types into it.
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// confirm asks a yes/no question on stderr and reads the answer from stdin.
func confirm(cmd *cobra.Command, question string) (bool, error) {
	fmt.Fprintf(cmd.ErrOrStderr(), "%s [y/N] ", question)
	var line []byte
	buf := make([]byte, 1)
	in := cmd.InOrStdin()
	for {
		n, err := in.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			line = append(line, buf[0])
		}
		if err == io.EOF {
			fmt.Fprintln(cmd.ErrOrStderr())
			break
		}
		if err != nil {
			return false, err
		}
	}
	switch strings.ToLower(strings.TrimSpace(string(line))) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// plural returns "1 partition", "2 partitions".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// interrupted reports whether err is the command's context ending (Ctrl-C
// or SIGTERM) rather than a failure.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
