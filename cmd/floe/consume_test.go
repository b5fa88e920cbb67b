package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func decodeRecords(t *testing.T, s string) []recordJSON {
	t.Helper()
	var out []recordJSON
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	for dec.More() {
		var r recordJSON
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decoding records from %q: %v", s, err)
		}
		out = append(out, r)
	}
	return out
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestConsumeWhatWasProduced(t *testing.T) {
	b := startTestAgent(t, nil)
	mustRun(t, "", "topic", "create", "kv", "-p", "3", "-b", b)
	lines := append(keyedLines(90), "nokey")
	mustRun(t, strings.Join(lines, "\n")+"\n", "produce", "kv", "-K", ":", "-H", "src=test", "-q", "-b", b)

	// Every line comes back, key and value, with the default format too.
	r := mustRun(t, "", "consume", "kv", "--from-beginning", "-e", "--format", "%k:%v", "-b", b)
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	want := slices.Clone(lines)
	want[90] = ":nokey"
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("consumed %d lines, want %d:\n%s", len(got), len(want), r.stdout)
	}
	r = mustRun(t, "", "consume", "kv", "--from-beginning", "-e", "-b", b)
	if n := len(nonEmptyLines(r.stdout)); n != 91 || !strings.Contains(r.stdout, "\nvalue-000\n") && !strings.HasPrefix(r.stdout, "value-000\n") {
		t.Errorf("default format: %d lines\n%s", n, r.stdout)
	}

	// JSON: keys stay on one partition, offsets run from 0, headers kept.
	recs := decodeRecords(t, mustRun(t, "", "consume", "kv", "--from-beginning", "-e", "-o", "json", "-b", b).stdout)
	if len(recs) != 91 {
		t.Fatalf("%d JSON records", len(recs))
	}
	keyPart := map[string]int32{}
	next := map[int32]int64{}
	for _, rec := range recs {
		if rec.Topic != "kv" || len(rec.Headers) != 1 || rec.Headers[0].Key != "src" || *rec.Headers[0].Value != "test" {
			t.Fatalf("record %+v", rec)
		}
		if _, err := time.Parse(time.RFC3339Nano, rec.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", rec.Timestamp, err)
		}
		if rec.Offset != next[rec.Partition] {
			t.Errorf("partition %d: offset %d, want %d", rec.Partition, rec.Offset, next[rec.Partition])
		}
		next[rec.Partition] = rec.Offset + 1
		if rec.Key == nil {
			if *rec.Value != "nokey" {
				t.Errorf("null key on %+v", rec)
			}
			continue
		}
		if p, ok := keyPart[*rec.Key]; ok && p != rec.Partition {
			t.Errorf("key %s on partitions %d and %d", *rec.Key, p, rec.Partition)
		}
		keyPart[*rec.Key] = rec.Partition
	}

	// A partition from an offset; the format's fields.
	var p0 int32 = -1
	for p, n := range next {
		if n >= 5 {
			p0 = p
			break
		}
	}
	r = mustRun(t, "", "consume", "kv", "--partition", fmt.Sprint(p0), "--offset", "2", "-e", "--format", `%t|%p|%o|%K|%V|%h\n`, "-b", b)
	out := nonEmptyLines(r.stdout)
	if int64(len(out)) != next[p0]-2 || !strings.HasPrefix(out[0], fmt.Sprintf("kv|%d|2|5|9|src=test", p0)) {
		t.Errorf("from offset 2 of partition %d (%d records):\n%s", p0, next[p0], r.stdout)
	}
	r = mustRun(t, "", "consume", "kv", "-p", fmt.Sprint(p0), "--offset=-3", "-e", "--format", "%o", "-b", b)
	if want := fmt.Sprintf("%d\n%d\n%d\n", next[p0]-3, next[p0]-2, next[p0]-1); r.stdout != want {
		t.Errorf("--offset=-3: %q, want %q", r.stdout, want)
	}
	r = mustRun(t, "", "consume", "kv", "-p", fmt.Sprint(p0), "--offset", "1000", "-e", "-b", b)
	if r.stdout != "" || !strings.Contains(r.stderr, "starting at") {
		t.Errorf("offset past the end: %v", r)
	}

	// -n stops after COUNT; a timeout before COUNT is an error.
	if r := mustRun(t, "", "consume", "kv", "--from-beginning", "-n", "5", "-b", b); len(nonEmptyLines(r.stdout)) != 5 {
		t.Errorf("-n 5:\n%s", r.stdout)
	}
	r = wantFail(t, 1, "timed out: no record for 500ms, 91 of 200 records printed", "", "consume", "kv", "--from-beginning", "-n", "200", "--timeout", "500ms", "-b", b)
	if len(nonEmptyLines(r.stdout)) != 91 {
		t.Errorf("printed %d records before timing out", len(nonEmptyLines(r.stdout)))
	}
	// From the end: -e has nothing to do; --timeout alone ends quietly.
	if r := mustRun(t, "", "consume", "kv", "-e", "-b", b); r.stdout != "" {
		t.Errorf("-e from the end printed %q", r.stdout)
	}
	if r := mustRun(t, "", "consume", "kv", "--timeout", "300ms", "-b", b); r.stdout != "" {
		t.Errorf("--timeout printed %q", r.stdout)
	}
	wantFail(t, 1, `topic "nope" does not exist`, "", "consume", "nope", "-b", b)
	wantFail(t, 1, "--partition 9 does not exist", "", "consume", "kv", "-p", "9", "-b", b)

	// Bytes that are not UTF-8 come back in base64.
	mustRun(t, "", "topic", "create", "bin", "-b", b)
	mustRun(t, "\xff\xfe:\x80ok\n:\n", "produce", "bin", "-K", ":", "-q", "-b", b)
	recs = decodeRecords(t, mustRun(t, "", "consume", "bin", "--from-beginning", "-e", "-o", "json", "-b", b).stdout)
	if len(recs) != 2 || recs[0].Key != nil || recs[0].KeyBase64 != "//4=" || recs[0].Value != nil || recs[0].ValueBase64 != "gG9r" {
		t.Errorf("binary record %+v", recs)
	}
	if r := recs[1]; r.Key == nil || *r.Key != "" || r.Value == nil || *r.Value != "" {
		t.Errorf("empty key and value %+v", r)
	}
}

func TestConsumeFollowsNewRecordsUntilInterrupted(t *testing.T) {
	b := startTestAgent(t, nil)
	mustRun(t, "", "topic", "create", "live", "-b", b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	done := make(chan cliResult, 1)
	go func() { done <- runCommand(ctx, t, newConsumeCmd(), "", &stdout, "live", "-b", b) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(b))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Records produced once it runs are printed; it started at the end, so
	// the first few may come before its start.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; !strings.Contains(stdout.String(), "fresh-"); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("consume printed nothing new: %q", stdout.String())
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "live", Value: []byte(fmt.Sprintf("fresh-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Fatalf("consume ended early: %v", r)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel() // Ctrl-C ends it normally
	if r := <-done; r.code != 0 {
		t.Fatalf("interrupted consume: %v", r)
	}
}
