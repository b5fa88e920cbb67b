package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// residentFileBytes is how much of the process's resident memory is
// mapped from files (its executable's code and read-only data, about
// 35 MiB for floe), from /proc/self/status; 0 where that is not
// available. Go's memory limit counts only the memory the runtime
// manages, so a process held to a limit on its resident memory, as a
// container is, leaves this much of the limit to the code.
func residentFileBytes() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("RssFile:"))
		if !ok {
			continue
		}
		kib, ok := bytes.CutSuffix(bytes.TrimSpace(rest), []byte(" kB"))
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(kib)), 10, 64)
		if err != nil || n < 0 {
			return 0
		}
		return n << 10
	}
	return 0
}
