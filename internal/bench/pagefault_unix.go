//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// mapAnon maps n bytes of fresh anonymous memory.
func mapAnon(n int) ([]byte, bool, error) {
	mem, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, true, fmt.Errorf("mapping %d bytes to time page faults: %w", n, err)
	}
	return mem, true, nil
}

func unmapAnon(mem []byte) error {
	if err := syscall.Munmap(mem); err != nil {
		return fmt.Errorf("unmapping the page fault measurement's memory: %w", err)
	}
	return nil
}
