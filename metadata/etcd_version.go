package metadata

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdVersionAdvice reads the version of every etcd endpoint cli knows and
// returns one line of advice per endpoint whose version costs floe much
// more than a current one (none: nothing to say).
//
// etcd before 3.5 copies its whole buffer of recent writes, at the largest
// size it ever reached, on every read transaction (etcd-io/etcd#12933 and
// #16508 removed the copy): after one large write (a topic deleted, a
// group committing thousands of partitions) every read floe makes costs
// etcd milliseconds of CPU instead of tens of microseconds, about 20× more
// on the shard-state reads measured. floe works with it, but slowly at
// many partitions.
func EtcdVersionAdvice(ctx context.Context, cli *clientv3.Client) ([]string, error) {
	var advice []string
	for _, ep := range cli.Endpoints() {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			return advice, fmt.Errorf("reading the version of etcd at %s: %w", ep, err)
		}
		if old, ok := etcdBefore(st.Version, 3, 5); ok && old {
			advice = append(advice, fmt.Sprintf("etcd %s at %s copies its write buffer on every read, so after large writes each of floe's etcd reads costs it up to 20× the CPU; run etcd 3.5 or later (3.6 is what floe's deploy files use)", st.Version, ep))
		}
	}
	return advice, nil
}

// etcdBefore reports whether version (etcd's "3.4.23") is before
// major.minor; ok is false when version does not parse.
func etcdBefore(version string, major, minor int) (before, ok bool) {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false, false
	}
	return ma < major || ma == major && mi < minor, true
}
