package bench

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Processes is implemented by clusters that know the processes they run
// on this machine, by name ("agent", "minio", "etcd"); the report then
// states the CPU each used in every phase, beside the bench's own and the
// whole machine's (which includes whatever else runs on it). A name may
// stand for several processes (every agent of a cluster of several): the
// report states their CPU together.
type Processes interface {
	Processes() map[string][]int
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// cpuSnap is the CPU time of the cluster's processes, the bench and the
// machine at one moment (Linux; elsewhere it is empty).
type cpuSnap struct {
	at      time.Time
	ticks   map[string]uint64
	faults  map[string]uint64 // minor page faults
	busy    uint64
	total   uint64
	machine bool
}

func (r *runner) cpuNow() *cpuSnap {
	s := &cpuSnap{at: time.Now(), ticks: map[string]uint64{}, faults: map[string]uint64{}}
	procs := map[string][]int{"bench": {os.Getpid()}}
	if p, ok := r.cl.(Processes); ok {
		for name, pids := range p.Processes() {
			procs[name] = pids
		}
	}
	for name, pids := range procs {
		if t, f, ok := sumStats(pids); ok {
			s.ticks[name], s.faults[name] = t, f
		}
	}
	s.busy, s.total, s.machine = machineTicks()
	return s
}

// cpuSince returns the cores each process used since s (CPU seconds per
// second of wall time), and "machine": the cores busy on the whole
// machine, out of "cpus".
func (r *runner) cpuSince(s *cpuSnap) map[string]float64 {
	cpu, _ := r.usageSince(s)
	return cpu
}

// usageSince is cpuSince, and the minor page faults each process took
// since s, per second.
func (r *runner) usageSince(s *cpuSnap) (cpu, faults map[string]float64) {
	now := r.cpuNow()
	wall := now.at.Sub(s.at).Seconds()
	if wall <= 0 {
		return nil, nil
	}
	for name, f := range now.faults {
		if f0, ok := s.faults[name]; ok && f >= f0 {
			if faults == nil {
				faults = map[string]float64{}
			}
			faults[name] = float64(int64(float64(f-f0) / wall))
		}
	}
	out := map[string]float64{}
	for name, t := range now.ticks {
		if t0, ok := s.ticks[name]; ok && t >= t0 {
			out[name] = round2(float64(t-t0) / clockTicks / wall)
		}
	}
	if s.machine && now.machine && now.total > s.total {
		frac := float64(now.busy-s.busy) / float64(now.total-s.total)
		out["machine"] = round2(frac * float64(r.rep.CPUs))
	}
	if len(out) == 0 {
		return nil, faults
	}
	return out, faults
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// sumStats adds the CPU time and the minor page faults of processes;
// false when any cannot be read (one is restarting), as a sum without it
// would not compare with one taken before.
func sumStats(pids []int) (ticks, faults uint64, ok bool) {
	for _, pid := range pids {
		t, f, ok := procStat(pid)
		if !ok {
			return 0, 0, false
		}
		ticks += t
		faults += f
	}
	return ticks, faults, len(pids) > 0
}

// procStat reads a process's user + system CPU time and its minor page
// faults from /proc.
func procStat(pid int) (ticks, minflt uint64, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseStat(string(data))
}

// parseStat reads the fields procStat returns from a /proc/PID/stat line.
func parseStat(line string) (ticks, minflt uint64, ok bool) {
	// The command name is in parentheses and may hold spaces; the fields
	// after it start at the state (stat's third).
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(line[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	mf, err0 := strconv.ParseUint(f[7], 10, 64)
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	sy, err2 := strconv.ParseUint(f[12], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return u + sy, mf, true
}

// machineTicks reads the machine's busy and total CPU time.
func machineTicks() (busy, total uint64, ok bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	var idle uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return total - idle, total, true
}
