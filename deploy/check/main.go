// Command check validates floe's Kubernetes manifests without a cluster or
// network access; scripts/check-deploy.sh runs it on every rendered overlay
// of deploy/kubernetes.
//
//	check schemas -out DIR FILE...      write a JSON schema for every kind in FILEs
//	check lint -floe BIN FILE...        check FILEs against floe's own rules
//
// schemas writes kubeconform's file layout ({kind}-{group}-{version}.json)
// generated from the Go types of k8s.io/api: every field name, type and
// required field, with additionalProperties false, so kubeconform -strict
// works offline. It knows nothing the Go types do not say (no enums, no
// formats, no cross-field rules).
//
// lint decodes every object strictly into its k8s.io/api type and checks
// what a schema cannot: probes hit the HTTP listener floe binds, every
// FLOE_* variable is a flag of the subcommand the container runs (from
// `BIN agent --help`), the grace period outlasts the drain, autoscaler,
// disruption budget and Service select the agents, pods run as non-root
// with a read-only root filesystem, and floe fits the etcd it is given.
//
// This is its own module so that k8s.io/api stays out of floe's go.mod.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "schemas":
		fs := flag.NewFlagSet("schemas", flag.ExitOnError)
		out := fs.String("out", "", "directory to write schemas into")
		fs.Parse(os.Args[2:])
		if *out == "" || fs.NArg() == 0 {
			usage()
		}
		kinds, err := kindsIn(fs.Args())
		if err != nil {
			fail(err)
		}
		n, err := writeSchemas(*out, kinds)
		if err != nil {
			fail(err)
		}
		fmt.Printf("check: wrote %d schemas to %s\n", n, *out)
	case "lint":
		fs := flag.NewFlagSet("lint", flag.ExitOnError)
		bin := fs.String("floe", "", "floe binary, asked for its flags (`floe agent --help`)")
		fs.Parse(os.Args[2:])
		if *bin == "" || fs.NArg() == 0 {
			usage()
		}
		flags, notes := floeFlags(*bin)
		for _, n := range notes {
			fmt.Println("check: note:", n)
		}
		bad := 0
		for _, file := range fs.Args() {
			objs, err := readFiles([]string{file})
			if err != nil {
				fail(err)
			}
			problems := lint(objs, flags)
			for _, p := range problems {
				fmt.Printf("%s: %s\n", file, p)
			}
			if len(problems) == 0 {
				fmt.Printf("%s: ok (%d objects)\n", file, len(objs))
			}
			bad += len(problems)
		}
		if bad > 0 {
			fail(fmt.Errorf("%d problems", bad))
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: check schemas -out DIR FILE... | check lint -floe BIN FILE...")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "check:", err)
	os.Exit(1)
}
