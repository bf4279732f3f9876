package bolt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrHeld is returned when another process (a running daemon) holds the
// file: it can then only be backed up through that daemon.
var ErrHeld = errors.New("held by another process")

// Summary describes a database file: what a backup or a restore reports,
// and what Verify checked.
type Summary struct {
	Bytes     int64
	Incidents int
	Open      int // incidents not resolved
	Pending   int // notifications not yet delivered
}

func (s Summary) String() string {
	return fmt.Sprintf("%d bytes, %d incidents (%d open), %d notifications pending", s.Bytes, s.Incidents, s.Open, s.Pending)
}

// Backup writes a consistent copy of the whole file to w from one read
// transaction: the state after the last commit before it began. Writes go
// on meanwhile; none of them is in the copy. sized, when not nil, learns
// the copy's size before its first byte is written (an HTTP answer's
// Content-Length).
func (db *DB) Backup(w io.Writer, sized func(int64)) (int64, error) {
	n, err := writeCopy(db.bolt, w, sized)
	if err != nil {
		return n, fmt.Errorf("back up %s: %w", db.bolt.Path(), err)
	}
	return n, nil
}

// BackupFile writes a consistent copy of the file at path to w when no
// other process holds it (no daemon runs on it); ErrHeld (with the
// holder's pid when known) when one does.
func BackupFile(path string, w io.Writer) (int64, error) {
	b, err := openReadOnly(path)
	if err != nil {
		return 0, fmt.Errorf("back up: %w", err)
	}
	defer func() { _ = b.Close() }()
	n, err := writeCopy(b, w, nil)
	if err != nil {
		return n, fmt.Errorf("back up %s: %w", path, err)
	}
	return n, nil
}

func writeCopy(b *bbolt.DB, w io.Writer, sized func(int64)) (int64, error) {
	var n int64
	err := b.View(func(tx *bbolt.Tx) error {
		if sized != nil {
			sized(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// pidOf is " (pid N)" for the process holding the file at path, when
// known, else "".
func pidOf(path string) string {
	if pid, ok := lockHolder(path); ok {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return ""
}

// heldError says that path is held, naming the holder when known.
func heldError(path string) error {
	return fmt.Errorf("%s: %w%s: stop the daemon on this data directory first", path, ErrHeld, pidOf(path))
}

// lockTarget takes the lock of the file at path (if there is one) for as
// long as it is being replaced, so that no daemon starts on it meanwhile;
// a file another process holds is refused.
func lockTarget(path string, exclusive bool) (release func(), err error) {
	release, held, err := lockFile(path, exclusive)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return func() {}, nil
	case err != nil:
		return nil, err
	case held:
		return nil, heldError(path)
	}
	return release, nil
}

// openReadOnly opens path without waiting for a lock another process
// holds: a daemon writing to it returns ErrHeld.
func openReadOnly(path string) (*bbolt.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 50 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w%s", path, ErrHeld, pidOf(path))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return b, nil
}

// Verify checks that the file at path is a whole Responder database this
// build can open: bbolt's consistency check of every page, every bucket
// the store needs, and the schema version. It reads the file without
// changing it.
func Verify(path string) (Summary, error) {
	var sum Summary
	fi, err := os.Stat(path)
	if err != nil {
		return sum, fmt.Errorf("verify %s: %w", path, err)
	}
	sum.Bytes = fi.Size()
	b, err := openReadOnly(path)
	if err != nil {
		return sum, fmt.Errorf("verify: %w", err)
	}
	defer func() { _ = b.Close() }()
	err = b.View(func(tx *bbolt.Tx) error {
		if tx.Size() > sum.Bytes {
			// bbolt checks the pages it reaches, and a file cut short may
			// still hold them all: its own high-water mark says how long
			// it must be.
			return fmt.Errorf("cut short: %d bytes, its pages reach %d", sum.Bytes, tx.Size())
		}
		// Drain the whole check: it runs in a goroutine of its own, which
		// holds the transaction until every error is read.
		var problems []string
		n := 0
		for err := range tx.Check() {
			if n++; n <= 10 {
				problems = append(problems, err.Error())
			}
		}
		if n > 0 {
			if n > 10 {
				problems = append(problems, fmt.Sprintf("and %d more", n-10))
			}
			return fmt.Errorf("bbolt's consistency check failed: %s", strings.Join(problems, "; "))
		}
		for _, name := range [][]byte{bucketMeta, bucketIncidents, bucketOpen, bucketAlerts, bucketTimeline, bucketOutbox, bucketPending} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("not a Responder database: no %q bucket", name)
			}
		}
		switch v := tx.Bucket(bucketMeta).Get([]byte("schema")); {
		case v == nil:
			return errors.New("not a Responder database: no schema version")
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %s, this build reads %s: restore it with the build that wrote it", v, schemaVersion)
		}
		sum.Incidents = tx.Bucket(bucketIncidents).Stats().KeyN
		sum.Open = tx.Bucket(bucketOpen).Stats().KeyN
		sum.Pending = tx.Bucket(bucketPending).Stats().KeyN
		return nil
	})
	if err != nil {
		return sum, fmt.Errorf("verify %s: %w", path, err)
	}
	return sum, nil
}

// WriteFile writes a database file at path through write, durably and
// whole or not at all: into a temporary file beside it, synced, checked
// with Verify, then renamed into place and the directory synced. An
// existing file at path is replaced only once the new one is whole, and
// never while another process (a daemon) holds it.
func WriteFile(path string, write func(io.Writer) (int64, error)) (Summary, error) {
	return place(path, write, nil, func(string) (func(), error) { return lockTarget(path, false) })
}

// Restored is what Restore did.
type Restored struct {
	Summary         // of the file now in place
	Previous string // where the file it replaced is kept; empty when there was none
}

// Restore puts the backup at from in place as the database file at path,
// whole or not at all. It refuses while another process (a daemon) holds
// path, and checks the backup (Verify) before anything else. The backup is
// copied beside path; prepare, when not nil, runs on that copy opened as a
// store (a restore marks the deliveries it finds pending as in doubt, say);
// the copy is checked again and synced. Then, holding the lock of both the
// file at path and the copy, so that a daemon starting meanwhile stops at
// once, the file at path is kept under a second name
// (path.before-restore-<UTC time of now>, never deleted) and the copy
// renamed over it: path names a whole database at every moment.
func Restore(from, path string, now time.Time, prepare func(*DB) error) (Restored, error) {
	var r Restored
	release, err := lockTarget(path, false)
	if err != nil {
		return r, fmt.Errorf("restore: %w", err)
	}
	release()
	if _, err := Verify(from); err != nil {
		return r, fmt.Errorf("restore from %s: %w", from, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return r, fmt.Errorf("restore into %s: %w", path, err)
	}
	copyFrom := func(w io.Writer) (int64, error) {
		f, err := os.Open(from) //nolint:gosec // the backup the operator named
		if err != nil {
			return 0, fmt.Errorf("restore from %s: %w", from, err)
		}
		defer func() { _ = f.Close() }()
		n, err := io.Copy(w, f)
		if err != nil {
			return n, fmt.Errorf("restore from %s: %w", from, err)
		}
		return n, nil
	}
	var prep func(string) error
	if prepare != nil {
		prep = func(tmp string) error {
			db, err := Open(tmp, Options{})
			if err != nil {
				return err
			}
			if err := prepare(db); err != nil {
				_ = db.Close()
				return fmt.Errorf("restore into %s: %w", path, err)
			}
			return db.Close()
		}
	}
	beforeRename := func(tmp string) (func(), error) {
		releaseNew, _, err := lockFile(tmp, true) // our own file: nobody else holds it
		if err != nil {
			return nil, fmt.Errorf("restore into %s: %w", path, err)
		}
		releaseOld, err := lockTarget(path, true)
		if err != nil {
			releaseNew()
			return nil, fmt.Errorf("restore: %w", err)
		}
		release := func() { releaseOld(); releaseNew() }
		if _, err := os.Stat(path); err == nil {
			kept, err := keepAside(path, now)
			if err != nil {
				release()
				return nil, fmt.Errorf("restore into %s: keep the file there: %w", path, err)
			}
			r.Previous = kept
		}
		return release, nil
	}
	sum, err := place(path, copyFrom, prep, beforeRename)
	r.Summary = sum
	return r, err
}

// keepAside gives the file at path a second name, the first of
// path.before-restore-<now>, -2, -3, ... that is free: a hard link, so
// that path itself goes on naming it until it is replaced.
func keepAside(path string, now time.Time) (string, error) {
	base := path + ".before-restore-" + now.UTC().Format("20060102T150405Z")
	for i := 1; i <= 100; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Link(path, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s and 99 more names are taken", base)
}

// place writes a database file at path through write, into a temporary
// file beside it; runs prepare on that file; syncs and checks it (Verify);
// runs beforeRename, which may hold locks until the returned release;
// then renames it into place and syncs the directory.
func place(path string, write func(io.Writer) (int64, error), prepare func(tmp string) error,
	beforeRename func(tmp string) (release func(), err error)) (Summary, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return Summary{}, fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	keep := false
	defer func() {
		if !keep {
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return Summary{}, fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := write(tmp); err != nil {
		return Summary{}, err
	}
	if err := tmp.Close(); err != nil {
		return Summary{}, fmt.Errorf("write %s: %w", path, err)
	}
	if prepare != nil {
		if err := prepare(name); err != nil {
			return Summary{}, err
		}
	}
	if err := syncFile(name); err != nil {
		return Summary{}, fmt.Errorf("write %s: sync: %w", path, err)
	}
	sum, err := Verify(name)
	if err != nil {
		return sum, fmt.Errorf("the copy is not whole, nothing written to %s: %w", path, err)
	}
	release, err := beforeRename(name)
	if err != nil {
		return sum, err
	}
	defer release()
	if err := os.Rename(name, path); err != nil {
		return sum, fmt.Errorf("write %s: %w", path, err)
	}
	keep = true
	if err := syncDir(dir); err != nil {
		return sum, fmt.Errorf("write %s: sync its directory: %w", path, err)
	}
	return sum, nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0) //nolint:gosec // our own temporary file
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // the directory of a path the operator gave
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}
