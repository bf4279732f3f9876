//go:build linux && (amd64 || arm64)

package main

import (
	"fmt"
	"os"
	"syscall"
)

// evictFile asks the kernel to drop a file's pages from the page cache
// (posix_fadvise POSIX_FADV_DONTNEED): the fallback when drop_caches is not
// permitted. Dirty pages are written first.
func evictFile(path string) error {
	f, err := os.Open(path) //nolint:gosec // the operator's own file
	if err != nil {
		return fmt.Errorf("evict %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("evict %s: sync: %w", path, err)
	}
	const fadvDontNeed = 4
	if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); errno != 0 {
		return fmt.Errorf("evict %s: fadvise: %w", path, errno)
	}
	return nil
}
