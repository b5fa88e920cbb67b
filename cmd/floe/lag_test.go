package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestLagWatch(t *testing.T) {
	b := startTestAgent(t, nil)
	mustRun(t, "", "topic", "create", "w", "-p", "2", "-b", b)
	mustRun(t, strings.Join(keyedLines(20), "\n"), "produce", "w", "-K", ":", "-q", "-b", b)
	mustRun(t, "", "consume", "w", "-g", "a", "--from-beginning", "-n", "8", "-b", b)
	mustRun(t, "", "consume", "w", "-g", "b", "--from-beginning", "-n", "15", "-b", b)

	snap := decodeJSON[lagSnapshot](t, mustRun(t, "", "lag", "-o", "json", "-b", b).stdout)
	if len(snap.Groups) != 2 || snap.Groups[0].Group != "a" || snap.Groups[0].TotalLag != 12 || snap.Groups[1].TotalLag != 5 || snap.TotalLag != 17 {
		t.Fatalf("lag of all groups: %+v", snap)
	}
	if r := mustRun(t, "", "lag", "-b", b); !strings.Contains(r.stdout, "total lag of 2 groups: 17") {
		t.Errorf("lag table:\n%s", r.stdout)
	}

	// --watch -o json: one snapshot per line per interval until Ctrl-C,
	// which ends it with status 0.
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	r := runCLIContext(ctx, t, "", "lag", "b", "--watch", "--interval", "200ms", "-o", "json", "-b", b)
	lines := nonEmptyLines(r.stdout)
	if r.code != 0 || len(lines) < 3 {
		t.Fatalf("--watch: %v", r)
	}
	for _, l := range lines {
		s := decodeJSON[lagSnapshot](t, l)
		if len(s.Groups) != 1 || s.Groups[0].Group != "b" || s.TotalLag != 5 {
			t.Errorf("watch snapshot %+v", s)
		}
	}
	// On a pipe the text form prints one table after another.
	ctx, cancel = context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	r = runCLIContext(ctx, t, "", "lag", "-w", "--interval", "200ms", "-b", b)
	if r.code != 0 || strings.Count(r.stdout, "every 200ms") < 2 || strings.Count(r.stdout, "total lag of 2 groups: 17") < 2 || strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("--watch text: %v", r)
	}
}
