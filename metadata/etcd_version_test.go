package metadata_test

import (
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

// TestEtcdVersionAdvice reads the test etcd's version: advice is given
// exactly when it is before 3.5, and names the version and endpoint.
func TestEtcdVersionAdvice(t *testing.T) {
	cli := testenv.Etcd(t)
	ctx := ctxT(t)
	advice, err := metadata.EtcdVersionAdvice(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	old := strings.HasPrefix(st.Version, "3.4.") || strings.HasPrefix(st.Version, "3.3.")
	if old != (len(advice) > 0) {
		t.Fatalf("etcd %s: advice %q", st.Version, advice)
	}
	for _, a := range advice {
		if !strings.Contains(a, st.Version) || !strings.Contains(a, cli.Endpoints()[0]) {
			t.Errorf("advice %q does not name etcd %s at %s", a, st.Version, cli.Endpoints()[0])
		}
	}
}
