package main

// floe user: SCRAM users, through the Kafka protocol
// (AlterUserScramCredentials / DescribeUserScramCredentials), so it works
// against floe and Apache Kafka alike. The password is salted here; only
// the salted hash crosses the network.

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newUserCmd() *cobra.Command {
	var cf clientFlags
	cmd := clientCommand(&cobra.Command{
		Use:   "user",
		Short: "Create, list and delete SCRAM users",
		Long: `Manage the users SASL/SCRAM authenticates (SCRAM-SHA-256 and SCRAM-SHA-512).

  floe user create alice --password-stdin <<<"s3cret"
  floe user list
  floe user delete alice

Passwords are salted by this command; brokers store only salted hashes.
Managing users needs ALTER (create, delete) or DESCRIBE (list) on the
cluster, so connect as an administrator (--sasl-user, --sasl-password).`,
		RunE: parentRunE,
	})
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newUserCreateCmd(&cf), newUserListCmd(&cf), newUserDeleteCmd(&cf))
	return cmd
}

func scramMechanisms(names []string) ([]kadm.ScramMechanism, error) {
	var out []kadm.ScramMechanism
	for _, n := range names {
		switch n {
		case "SCRAM-SHA-256":
			out = append(out, kadm.ScramSha256)
		case "SCRAM-SHA-512":
			out = append(out, kadm.ScramSha512)
		default:
			return nil, fmt.Errorf("mechanism %q: use SCRAM-SHA-256 or SCRAM-SHA-512", n)
		}
	}
	return out, nil
}

func newUserCreateCmd(cf *clientFlags) *cobra.Command {
	var (
		password      string
		passwordStdin bool
		mechanisms    []string
		iterations    int32
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user or change its password",
		Args:  argsRange(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if passwordStdin {
				var line string
				if _, err := fmt.Fscanln(os.Stdin, &line); err != nil {
					return usageError(cmd, "--password-stdin: reading a password line: %v", err)
				}
				password = line
			}
			if password == "" {
				return usageError(cmd, "give a password with --password-stdin or FLOE_USER_PASSWORD")
			}
			mechs, err := scramMechanisms(mechanisms)
			if err != nil {
				return usageError(cmd, "--mechanisms: %v", err)
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			var ups []kadm.UpsertSCRAM
			for _, m := range mechs {
				ups = append(ups, kadm.UpsertSCRAM{User: args[0], Mechanism: m, Iterations: iterations, Password: password})
			}
			res, err := adm.AlterUserSCRAMs(ctx, nil, ups)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				return explain("user "+args[0], err, "")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: %d credential(s) set\n", args[0], len(ups))
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	fs.StringVar(&password, "user-password", "", "the password (prefer --password-stdin or FLOE_USER_PASSWORD; a flag shows in ps)")
	fs.StringSliceVar(&mechanisms, "mechanisms", []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM mechanisms to set")
	fs.Int32Var(&iterations, "iterations", 8192, "PBKDF2 iterations (4096 to 16384)")
	return cmd
}

func newUserListCmd(cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users and their SCRAM mechanisms",
		Long: `List users and their SCRAM mechanisms.

JSON output: {"users": [{"name", "mechanisms": [{"mechanism", "iterations"}]}]}.`,
		Args: argsRange(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			res, err := adm.DescribeUserSCRAMs(ctx)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				return explain("listing users", err, "")
			}
			type mech struct {
				Mechanism  string `json:"mechanism"`
				Iterations int32  `json:"iterations"`
			}
			type user struct {
				Name       string `json:"name"`
				Mechanisms []mech `json:"mechanisms"`
			}
			users := []user{}
			for name, r := range res {
				u := user{Name: name, Mechanisms: []mech{}}
				for _, ci := range r.CredInfos {
					u.Mechanisms = append(u.Mechanisms, mech{ci.Mechanism.String(), ci.Iterations})
				}
				users = append(users, u)
			}
			sort.Slice(users, func(i, j int) bool { return users[i].Name < users[j].Name })
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"users": users})
			}
			t := newTable(cmd.OutOrStdout(), "USER", "MECHANISM", "ITERATIONS")
			for _, u := range users {
				for _, m := range u.Mechanisms {
					t.row(u.Name, m.Mechanism, m.Iterations)
				}
			}
			return t.flush()
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newUserDeleteCmd(cf *clientFlags) *cobra.Command {
	var mechanisms []string
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user's SCRAM credentials",
		Args:  argsRange(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			mechs, err := scramMechanisms(mechanisms)
			if err != nil {
				return usageError(cmd, "--mechanisms: %v", err)
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			existing, err := adm.DescribeUserSCRAMs(ctx, args[0])
			if err != nil {
				return explain("user "+args[0], err, "")
			}
			var dels []kadm.DeleteSCRAM
			for _, m := range mechs {
				for _, ci := range existing[args[0]].CredInfos {
					if ci.Mechanism == m {
						dels = append(dels, kadm.DeleteSCRAM{User: args[0], Mechanism: m})
					}
				}
			}
			if len(dels) == 0 {
				return errors.New("user " + args[0] + " has no such credentials (see `floe user list`)")
			}
			res, err := adm.AlterUserSCRAMs(ctx, dels, nil)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				return explain("user "+args[0], err, "")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: %d credential(s) deleted\n", args[0], len(dels))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&mechanisms, "mechanisms", []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM mechanisms to delete")
	return cmd
}
