//go:build !unix

package bolt

import (
	"errors"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// lockFile takes the lock a daemon takes on a database file through bbolt
// itself (its lock is not flock here): held reports that another holder's
// lock is in the way; release drops it. Unlike the flock test of unix
// systems it needs a file bbolt can open.
func lockFile(path string, exclusive bool) (release func(), held bool, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, false, err // never create the file it was asked to lock
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: !exclusive, Timeout: 50 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return func() { _ = b.Close() }, false, nil
}
