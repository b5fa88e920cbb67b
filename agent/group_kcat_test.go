package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kcat runs kcat (librdkafka) with args against the cluster and returns
// its stdout and stderr; in secure mode it connects with SASL_SSL and
// SCRAM-SHA-512. It skips the test when kcat is not installed.
func (c *testCluster) kcat(t *testing.T, timeout time.Duration, args ...string) (string, string, error) {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("skipped: kcat (librdkafka) is not installed")
	}
	if c.pki != nil {
		args = append([]string{"-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=" + testAdmin, "-X", "sasl.password=" + testAdminPassword,
			"-X", "ssl.ca.location=" + c.pki.caFile}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestLibrdkafkaGroupCommitsAndResumes has librdkafka's balanced
// consumer (through kcat) read part of a topic in a group, commit on
// close, and a second run resume where the first stopped.
func TestLibrdkafkaGroupCommitsAndResumes(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("skipped: kcat (librdkafka) is not installed")
	}
	c := newTestCluster(t)
	a := c.addAgent(fastGroups)
	createTopic(t, c, "k", 2, nil)
	cl := c.client(kgo.DefaultProduceTopic("k"))
	var want []string
	for i := range 20 {
		v := fmt.Sprintf("v%02d", i)
		want = append(want, v)
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(v), Partition: int32(i % 2)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	run := func(n int) []string {
		t.Helper()
		out, stderr, err := c.kcat(t, 60*time.Second, "-b", a.Addr(), "-G", "rdk", "-c", fmt.Sprint(n), "-q",
			"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
			"-f", "%s\n", "k")
		if err != nil {
			t.Fatalf("kcat: %v\n%s", err, stderr)
		}
		return strings.Fields(out)
	}
	first := run(10)
	if len(first) != 10 {
		t.Fatalf("first run read %d records: %v", len(first), first)
	}
	adm := c.admin()
	committed := int64(0)
	o, err := adm.FetchOffsets(testCtx(t), "rdk")
	if err != nil {
		t.Fatal(err)
	}
	o.Each(func(r kadm.OffsetResponse) { committed += r.At })
	if committed != 10 {
		t.Fatalf("librdkafka committed %d records' worth of offsets, want 10: %+v", committed, o)
	}
	second := run(10)
	got := append(first, second...)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("two runs read %v, want each of %v once", got, want)
	}

	// auto.offset.reset=error (librdkafka's "none") with nothing
	// committed gives the client its error.
	_, stderr, _ := c.kcat(t, 8*time.Second, "-b", a.Addr(), "-G", "fresh", "-c", "1",
		"-X", "auto.offset.reset=error", "-X", "session.timeout.ms=6000", "k")
	t.Logf("librdkafka with auto.offset.reset=error: %s", strings.TrimSpace(stderr))
	if !strings.Contains(stderr, "No offset stored") {
		t.Fatalf("no offset reset error from librdkafka; stderr:\n%s", stderr)
	}
}
