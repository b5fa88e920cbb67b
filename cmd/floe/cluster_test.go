package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

// floe cluster info shows the log entry encoding a cluster writes, and
// floe cluster finalize raises an older cluster's to the newest; a
// cluster no agent has started is one readable line and exit status 1.
func TestClusterFinalize(t *testing.T) {
	cluster := testenv.Cluster(t)
	endpoints := strings.Join(testenv.EtcdEndpoints(t), ",")
	cli := testenv.Etcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := runCLI(t, "", "cluster", "info", "--etcd-endpoints", endpoints, "--cluster", cluster)
	if r.code != 1 || !strings.Contains(r.stderr, "no record yet") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("info of a cluster no agent started: exit %d, stderr %q", r.code, r.stderr)
	}

	// The record an agent of a release before log entry version 3 wrote.
	old, err := json.Marshal(map[string]any{"v": 1, "id": "before-v3", "created": time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/floe/"+cluster+"/cluster", string(old)); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "", "cluster", "info", "--etcd-endpoints", endpoints, "--cluster", cluster)
	if r.code != 0 || !strings.Contains(r.stdout, "before-v3") || !strings.Contains(r.stdout, "log entry version  2 ") {
		t.Fatalf("info: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for range 2 { // finalizing again changes nothing
		r = runCLI(t, "", "cluster", "finalize", "--etcd-endpoints", endpoints, "--cluster", cluster)
		if r.code != 0 || !strings.Contains(r.stdout, "log entry version  3 ") {
			t.Fatalf("finalize: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	}
	r = runCLI(t, "", "cluster", "info", "-o", "json", "--etcd-endpoints", endpoints, "--cluster", cluster)
	var got struct {
		ID      string `json:"id"`
		Version int    `json:"log_entry_version"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 || got.ID != "before-v3" || got.Version != metadata.LatestLogEntryVersion {
		t.Fatalf("info -o json: exit %d, stdout %q (%v)", r.code, r.stdout, err)
	}
	store, err := metadata.NewStore(cli, cluster)
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.Cluster(ctx)
	if err != nil || info.EntryVersion() != metadata.LatestLogEntryVersion || info.ID != "before-v3" {
		t.Fatalf("the record after finalize: %+v, %v", info, err)
	}
}
