package main

import (
	"fmt"
	"strings"
	"testing"
)

// keyedLines is n lines "key-K:value-I" over nine keys.
func keyedLines(n int) []string {
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf("key-%d:value-%03d", i%9, i))
	}
	return lines
}

func TestProduceSummaryAndOptions(t *testing.T) {
	b := startTestAgent(t, nil)
	mustRun(t, "", "topic", "create", "kv", "-p", "3", "-b", b)
	lines := append(keyedLines(90), "nokey")
	r := mustRun(t, strings.Join(lines, "\n")+"\n", "produce", "kv", "-K", ":", "-H", "src=test", "-o", "json", "-b", b)
	s := decodeJSON[produceSummary](t, r.stdout)
	if s.Topic != "kv" || s.Lines != 91 || s.Produced != 91 || s.Failed != 0 || s.Unkeyed != 1 || s.Error != "" || s.Bytes == 0 {
		t.Fatalf("summary %+v", s)
	}
	var sum int64
	for _, p := range s.Partitions {
		sum += p.Records
		if p.FirstOffset != 0 || p.LastOffset != p.Records-1 {
			t.Errorf("partition %+v: offsets should run 0..records-1", p)
		}
	}
	if sum != 91 || len(s.Partitions) < 2 {
		t.Errorf("partitions %+v", s.Partitions)
	}
	// The text summary goes to stderr and stdout stays empty.
	r = mustRun(t, "x\ny", "produce", "kv", "-b", b)
	if r.stdout != "" || !strings.Contains(r.stderr, "produced 2 of 2 records to kv") {
		t.Errorf("text summary: %v", r)
	}
	r = mustRun(t, "k:v\n", "produce", "kv", "-K", "::", "-b", b)
	if !strings.Contains(r.stderr, `1 lines had no key separator "::"`) {
		t.Errorf("unkeyed note: %v", r)
	}
	if r := mustRun(t, "x\n", "produce", "kv", "-q", "-b", b); r.stderr != "" || r.stdout != "" {
		t.Errorf("-q printed %v", r)
	}
	// acks, compression and a fixed partition.
	for _, args := range [][]string{
		{"--acks", "1", "--compression", "zstd"},
		{"--acks", "0", "--compression", "lz4"},
		{"--acks", "all", "--compression", "gzip", "--partition", "2"},
		{"--compression", "snappy", "-p", "2"},
	} {
		r := mustRun(t, "a\nb\nc\n", append([]string{"produce", "kv", "-o", "json", "-b", b}, args...)...)
		s := decodeJSON[produceSummary](t, r.stdout)
		if s.Produced != 3 || s.Failed != 0 {
			t.Errorf("produce %v: %+v", args, s)
		}
		if strings.Contains(strings.Join(args, " "), "2") && (len(s.Partitions) != 1 || s.Partitions[0].Partition != 2) {
			t.Errorf("produce %v went to %+v", args, s.Partitions)
		}
		if noAck := args[1] == "0"; noAck != (s.Partitions[0].FirstOffset == -1) {
			t.Errorf("produce %v: offsets %+v", args, s.Partitions)
		}
	}
	wantFail(t, 1, `topic "kv" has 3 partitions (0 to 2): --partition 7 does not exist`, "a\n", "produce", "kv", "--partition", "7", "-b", b)
	// A record the broker refuses fails the command, with the count.
	big := strings.Repeat("x", 2<<20)
	r = wantFail(t, 1, "1 of 2 records to kv were not produced", "small\n"+big+"\n", "produce", "kv", "-b", b)
	if !strings.Contains(r.stderr, "produced 1 of 2 records") {
		t.Errorf("failed produce summary: %v", r)
	}
}
