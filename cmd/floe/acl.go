package main

// floe acl: Kafka ACLs through the Kafka protocol (CreateAcls,
// DescribeAcls, DeleteAcls), for floe and Apache Kafka alike.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newACLCmd() *cobra.Command {
	var cf clientFlags
	cmd := clientCommand(&cobra.Command{
		Use:   "acl",
		Short: "Grant, list and revoke Kafka ACLs",
		Long: `Manage ACLs: who may do what to which topics, groups and the cluster.

  floe acl create --allow User:alice --operation write --topic orders- --prefixed
  floe acl create --allow User:alice --operation read --group billing
  floe acl create --deny User:mallory --operation all --topic '*'
  floe acl list [--principal User:alice]
  floe acl delete --allow User:alice --operation write --topic orders- --prefixed

Operations: all, read, write, create, delete, alter, describe,
cluster_action, describe_configs, alter_configs, idempotent_write.
Managing ACLs needs ALTER (create, delete) or DESCRIBE (list) on the cluster.`,
		RunE: parentRunE,
	})
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newACLCreateCmd(&cf), newACLListCmd(&cf), newACLDeleteCmd(&cf))
	return cmd
}

// aclFlags select ACLs for create and delete.
type aclFlags struct {
	allow, deny       []string
	hosts             []string
	operations        []string
	topics, groups    []string
	cluster, prefixed bool
}

func (f *aclFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.allow, "allow", nil, "principals to allow, e.g. User:alice")
	fs.StringSliceVar(&f.deny, "deny", nil, "principals to deny (deny wins over allow)")
	fs.StringSliceVar(&f.hosts, "host", nil, "client hosts the ACL applies to (default: any)")
	fs.StringSliceVar(&f.operations, "operation", nil, "operations (see above)")
	fs.StringSliceVar(&f.topics, "topic", nil, "topics ('*' for all)")
	fs.StringSliceVar(&f.groups, "group", nil, "consumer groups ('*' for all)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster itself (topic creation, ACL and user management, idempotent writes)")
	fs.BoolVar(&f.prefixed, "prefixed", false, "treat --topic and --group names as prefixes")
}

func (f *aclFlags) builder(cmd *cobra.Command) (*kadm.ACLBuilder, error) {
	if len(f.allow)+len(f.deny) == 0 {
		return nil, usageError(cmd, "name principals with --allow or --deny")
	}
	if len(f.topics)+len(f.groups) == 0 && !f.cluster {
		return nil, usageError(cmd, "name resources with --topic, --group or --cluster")
	}
	if len(f.operations) == 0 {
		return nil, usageError(cmd, "name operations with --operation")
	}
	var ops []kadm.ACLOperation
	for _, o := range f.operations {
		op, err := kmsg.ParseACLOperation(strings.ToLower(o))
		if err != nil {
			return nil, usageError(cmd, "--operation %q is not an ACL operation", o)
		}
		ops = append(ops, op)
	}
	b := kadm.NewACLs().Topics(f.topics...).Groups(f.groups...).Operations(ops...)
	if f.cluster {
		b = b.Clusters()
	}
	if len(f.allow) > 0 {
		b = b.Allow(f.allow...).AllowHosts(f.hosts...)
	}
	if len(f.deny) > 0 {
		b = b.Deny(f.deny...).DenyHosts(f.hosts...)
	}
	if f.prefixed {
		b = b.ResourcePatternType(kadm.ACLPatternPrefixed)
	}
	return b, nil
}

func newACLCreateCmd(cf *clientFlags) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create ACLs",
		Args:  argsRange(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.builder(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			res, err := adm.CreateACLs(ctx, b)
			if err != nil {
				return explain("creating ACLs", err, "")
			}
			for _, r := range res {
				if r.Err != nil {
					return explain("creating ACLs", r.Err, r.ErrMessage)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d ACL(s) created\n", len(res))
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

type aclRow struct {
	Principal    string `json:"principal"`
	Permission   string `json:"permission"`
	Operation    string `json:"operation"`
	ResourceType string `json:"resource_type"`
	Resource     string `json:"resource"`
	Pattern      string `json:"pattern"`
	Host         string `json:"host"`
}

func newACLListCmd(cf *clientFlags) *cobra.Command {
	var (
		principal string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List ACLs",
		Long: `List ACLs, optionally of one principal.

JSON output: {"acls": [{"principal", "permission", "operation",
"resource_type", "resource", "pattern", "host"}]}.`,
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
			b := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny)
			if principal != "" {
				b = b.Allow(principal).AllowHosts().Deny(principal).DenyHosts()
			} else {
				b = b.Allow().AllowHosts().Deny().DenyHosts()
			}
			res, err := adm.DescribeACLs(ctx, b)
			if err != nil {
				return explain("listing ACLs", err, "")
			}
			rows := []aclRow{}
			seen := map[aclRow]bool{}
			for _, r := range res {
				if r.Err != nil {
					return explain("listing ACLs", r.Err, r.ErrMessage)
				}
				for _, d := range r.Described {
					row := aclRow{d.Principal, d.Permission.String(), d.Operation.String(), d.Type.String(), d.Name, d.Pattern.String(), d.Host}
					if !seen[row] {
						seen[row] = true
						rows = append(rows, row)
					}
				}
			}
			sort.Slice(rows, func(i, j int) bool {
				a, b := rows[i], rows[j]
				return fmt.Sprint(a.Principal, a.ResourceType, a.Resource, a.Operation) < fmt.Sprint(b.Principal, b.ResourceType, b.Resource, b.Operation)
			})
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"acls": rows})
			}
			t := newTable(cmd.OutOrStdout(), "PRINCIPAL", "PERMISSION", "OPERATION", "RESOURCE", "NAME", "PATTERN", "HOST")
			for _, r := range rows {
				t.row(r.Principal, r.Permission, r.Operation, r.ResourceType, r.Resource, r.Pattern, r.Host)
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&principal, "principal", "", "only this principal's ACLs, e.g. User:alice")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newACLDeleteCmd(cf *clientFlags) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete the ACLs the flags match",
		Args:  argsRange(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.builder(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			res, err := adm.DeleteACLs(ctx, b)
			if err != nil {
				return explain("deleting ACLs", err, "")
			}
			n := 0
			for _, r := range res {
				if r.Err != nil {
					return explain("deleting ACLs", r.Err, r.ErrMessage)
				}
				n += len(r.Deleted)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d ACL(s) deleted\n", n)
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}
