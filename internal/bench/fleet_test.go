package bench

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseFleetSize(t *testing.T) {
	for in, want := range map[string]FleetSize{"2000x256": {2000, 256}, "300×64": {300, 64}, " 20X8 ": {20, 8}} {
		if got, err := ParseFleetSize(in); err != nil || got != want {
			t.Errorf("ParseFleetSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "2000", "0x4", "4x0", "ax3", "2x3x4"} {
		if _, err := ParseFleetSize(bad); err == nil {
			t.Errorf("ParseFleetSize(%q) accepted", bad)
		}
	}
}

func TestFleetJudge(t *testing.T) {
	for _, c := range []struct {
		name string
		res  FleetResult
		pass bool
	}{
		{"all acknowledged", FleetResult{Sent: 100, Acked: 100, Offsets: 100}, true},
		{"one failed", FleetResult{Sent: 100, Acked: 99, Failed: 1, Offsets: 99}, false},
		{"one unanswered", FleetResult{Sent: 100, Acked: 99, Unanswered: 1, Offsets: 99}, false},
		{"a failed record was written", FleetResult{Sent: 100, Acked: 99, Failed: 1, Offsets: 100}, false},
		{"a record written twice", FleetResult{Sent: 100, Acked: 100, Offsets: 101}, false},
		{"nothing sent", FleetResult{}, false},
	} {
		c.res.judge()
		if c.res.Passed != c.pass || c.pass != (len(c.res.Failures) == 0) {
			t.Errorf("%s: passed %v (%q), want %v", c.name, c.res.Passed, c.res.Failures, c.pass)
		}
	}
}

func TestFleetReport(t *testing.T) {
	ok := &FleetResult{Producers: 300, Partitions: 64, Sent: 10, Acked: 10, Offsets: 10, Agents: &FleetAgents{LogRead: true}}
	bad := &FleetResult{Producers: 2000, Partitions: 256, Sent: 10, Acked: 9, Failed: 1, Offsets: 9,
		FailedBy: map[string]int64{"record delivery timeout": 1}, Retried: map[string]int64{"NOT_LEADER_FOR_PARTITION": 3, "EOF": 1},
		Agents: &FleetAgents{CommitErrors: 2}}
	ok.judge()
	bad.judge()
	rep := &Report{Fleet: []*FleetResult{ok, bad}, Agent: AgentSettings{SegmentTargetBytes: 8 << 20}}
	rep.evaluate()
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"PASS fleet 300x64", "FAIL fleet 2000x256: 1 of 10 records not acknowledged", "NOT_LEADER_FOR_PARTITION 3, EOF 1", "record delivery timeout 1"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, b.String())
		}
	}
	if f := rep.FleetFailures(); len(f) != 1 || !strings.HasPrefix(f[0], "fleet 2000x256") {
		t.Errorf("FleetFailures() = %q", f)
	}
	met := map[string]bool{}
	for _, tg := range rep.Targets {
		if tg.Met != nil {
			met[tg.Name] = *tg.Met
		}
	}
	if !met["fleet 300x64: records"] || !met["fleet 300x64: commits"] || met["fleet 2000x256: records"] || met["fleet 2000x256: commits"] {
		t.Errorf("fleet targets: %v", met)
	}
}

func TestErrorName(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("producing: %w", kerr.NotLeaderForPartition), "NOT_LEADER_FOR_PARTITION"},
		{kgo.ErrRecordTimeout, kgo.ErrRecordTimeout.Error()},
		{errors.New("unable to dial 127.0.0.1:40123 after 3 tries"), "unable to dial N.N.N.N:N after N tries"},
	} {
		if got := errorName(c.err); got != c.want {
			t.Errorf("errorName(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	var counts errorCounts
	for i := range maxErrorNames + 5 {
		counts.add(fmt.Sprintf("e%c", 'a'+i))
	}
	if m := counts.snapshot(); len(m) != maxErrorNames+1 || m["other"] != 5 {
		t.Errorf("past %d names: %v", maxErrorNames, m)
	}
}
