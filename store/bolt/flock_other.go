//go:build !unix

package bolt

import (
	"errors"
	"os"
)

// lockFile is not implemented on this system: backups and restores of a
// file need the daemon's lock to be tested first.
func lockFile(path string, _ bool) (func(), bool, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, false, err
	}
	return nil, false, errors.New("file locks cannot be tested on this system")
}
