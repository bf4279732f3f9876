//go:build unix

package bolt

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes the lock bbolt takes on a database file (flock: shared,
// or exclusive as a daemon holds it) without waiting. held reports that
// another holder's lock is in the way; release drops the lock. It reads
// nothing of the file, so it works on a file too broken for bbolt to open.
func lockFile(path string, exclusive bool) (release func(), held bool, err error) {
	f, err := os.Open(path) //nolint:gosec // a database file the operator named
	if err != nil {
		return nil, false, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, false, nil
}
