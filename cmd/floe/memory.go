package main

import "github.com/prometheus/procfs"

// residentFileBytes is how much of the process's resident memory is
// mapped from files (its executable's code and read-only data, about
// 35 MiB for floe), from /proc; 0 where that is not available. Go's memory
// limit counts only the memory the runtime manages, so a process held to a
// limit on its resident memory, as a container is, leaves this much of the
// limit to the code.
func residentFileBytes() int64 {
	p, err := procfs.Self()
	if err != nil {
		return 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0
	}
	return int64(st.RssFile)
}
