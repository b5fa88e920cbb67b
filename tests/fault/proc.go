package fault

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one long-running process of the cluster (etcd, MinIO, an agent,
// the compactor) that the suite starts, signals, and starts again with the
// same command line. Its output goes to one log file across restarts.
//
// An exit the suite did not cause (through Kill, Stop or Expect) is a
// crash, reported by Crashes.
type Proc struct {
	Name    string
	Path    string
	Args    []string
	Env     []string // added to the environment
	LogPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	state    *os.ProcessState
	expected bool // the current process is expected to exit
	starts   int
	crashes  []string
	paused   bool
}

// Start starts the process; it must not be running.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exitedLocked() {
		return fmt.Errorf("%s is already running (pid %d)", p.Name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(logf, "=== fault suite: start %d of %s at %s: %s %s\n", p.starts, p.Name, time.Now().Format(time.RFC3339Nano), p.Path, strings.Join(p.Args, " "))
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(cleanEnv(), p.Env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own process group, so a terminal's ^C reaches only the test,
	// and killed with the test process if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.state, p.expected, p.paused = cmd, done, nil, false, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		p.state = cmd.ProcessState
		if !p.expected {
			p.crashes = append(p.crashes, fmt.Sprintf("%s (pid %d) exited unexpectedly at %s: %v", p.Name, cmd.Process.Pid, time.Now().Format("15:04:05.000"), err))
		}
		close(done)
	}()
	return nil
}

// cleanEnv is the test's environment without variables that would change
// the servers' behaviour behind the suite's back (etcd reads ETCD_*,
// MinIO MINIO_*, floe FLOE_*).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "FLOE_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (p *Proc) exitedLocked() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Running reports whether the process is alive (paused counts as alive).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exitedLocked()
}

// Pid is the current process's ID, or 0.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Expect marks the current process's next exit as expected.
func (p *Proc) Expect() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expected = true
}

// Signal sends sig to the running process.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exitedLocked() {
		return fmt.Errorf("%s is not running", p.Name)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT:
		p.expected = true
		if p.paused {
			// A stopped process acts on SIGTERM only once continued.
			defer p.cmd.Process.Signal(syscall.SIGCONT)
			p.paused = false
		}
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the current process to exit and returns
// its state.
func (p *Proc) Wait(timeout time.Duration) (*os.ProcessState, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return nil, fmt.Errorf("%s was never started", p.Name)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return nil, fmt.Errorf("%s did not exit within %v", p.Name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, nil
}

// Kill kills the process (SIGKILL) and waits for it.
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_, err := p.Wait(10 * time.Second)
	return err
}

// Stop sends SIGTERM, waits up to timeout, then kills. It returns the
// exit state of a process that exited on its own, or an error.
func (p *Proc) Stop(timeout time.Duration) (*os.ProcessState, error) {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return nil, err
	}
	st, err := p.Wait(timeout)
	if err != nil {
		p.Kill()
		return nil, err
	}
	return st, nil
}

// Crashes lists the exits nobody asked for.
func (p *Proc) Crashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashes...)
}

// Starts is how many times the process was started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	return tail(f, n)
}

func tail(r io.Reader, n int) string {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = lines[len(lines)-n:]
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Grep returns the log lines that contain every one of words.
func (p *Proc) Grep(words ...string) ([]string, error) {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// errNotReady is returned by readiness checks that have not passed yet.
var errNotReady = errors.New("not ready")
