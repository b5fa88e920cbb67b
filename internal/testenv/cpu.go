package testenv

import (
	"syscall"
	"time"
)

// ProcessCPU is the test process's user and system CPU time, for
// benchmarks that report CPU per operation: on a shared machine it moves
// less than the time per operation does.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
