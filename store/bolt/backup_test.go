package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
	"github.com/responder-sre/responder/store/storetest"
)

func countIncidents(t *testing.T, db store.DB) int {
	t.Helper()
	n := 0
	storetest.View(t, db, func(tx store.Tx) error {
		page, err := tx.ListIncidents(store.Filter{Limit: 1 << 20, MaxScan: 1 << 20})
		n = len(page.Incidents)
		return err
	})
	return n
}

// A backup taken while writes go on is a whole database holding every
// write committed before it began, checked by bbolt, and opens as a store.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t, bolt.Options{})
	for range 50 {
		storetest.Update(t, db, writeNewIncident)
	}
	stop, going := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for n := 1; ; n++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := db.Update(ctx, writeNewIncident); err != nil {
				done <- err
				return
			}
			if n == 20 {
				close(going) // writes land before and while the copy is made
			}
		}
	}()
	select {
	case <-going:
	case err := <-done:
		t.Fatalf("concurrent write: %v", err)
	}
	before := countIncidents(t, db)
	dst := filepath.Join(t.TempDir(), "copy.db")
	var announced int64
	sum, err := bolt.WriteFile(dst, func(w io.Writer) (int64, error) {
		return db.Backup(w, func(n int64) { announced = n })
	})
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatalf("concurrent write: %v", werr)
	}
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if announced != fi.Size() || sum.Bytes != fi.Size() {
		t.Errorf("sizes: announced %d, summary %d, file %d; want them equal", announced, sum.Bytes, fi.Size())
	}
	if sum.Incidents < before {
		t.Errorf("backup holds %d incidents, want at least the %d committed before it began", sum.Incidents, before)
	}
	copied := openAt(t, dst, bolt.Options{})
	if got := countIncidents(t, copied); got != sum.Incidents {
		t.Errorf("the copy lists %d incidents, its summary says %d", got, sum.Incidents)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("copy mode %v, want 0600: it holds everything the store does", fi.Mode().Perm())
	}
}

// A file a daemon holds is refused with ErrHeld naming the holder; once
// it is closed, the same file is copied straight from disk.
func TestBackupFileHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Update(t, db, writeNewIncident)
	_, err = bolt.BackupFile(path, io.Discard)
	if !errors.Is(err, bolt.ErrHeld) {
		t.Fatalf("BackupFile of a held file = %v, want ErrHeld", err)
	}
	if !strings.Contains(err.Error(), "pid") {
		t.Errorf("error %q does not name the holder's pid", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := bolt.BackupFile(path, &buf); err != nil {
		t.Fatalf("BackupFile of a closed file: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	sum, err := bolt.WriteFile(dst, func(w io.Writer) (int64, error) { return io.Copy(w, &buf) })
	if err != nil || sum.Incidents != 1 {
		t.Fatalf("copy: %+v, %v; want 1 incident", sum, err)
	}
}

// Verify refuses what is not a whole Responder database of this build,
// and WriteFile then leaves the target as it was.
func TestVerifyRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	db, err := bolt.Open(good, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		storetest.Update(t, db, writeNewIncident)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	rawBolt := func(t *testing.T, fill func(*bbolt.Tx) error) []byte {
		p := filepath.Join(t.TempDir(), "raw.db")
		b, err := bbolt.Open(p, 0o600, &bbolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Update(fill); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	corrupt := bytes.Clone(whole)
	// Overwrite a page past the two meta pages and the first bucket pages.
	for i := 6 * 4096; i < 7*4096 && i < len(corrupt); i++ {
		corrupt[i] = 0xA5
	}
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "", nil},
		{"text", "", []byte("not a database at all\n")},
		{"truncated", "cut short", whole[:8*4096]},
		{"corrupt page", "", corrupt},
		{"other bbolt file", "not a Responder database", rawBolt(t, func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte("something_else"))
			return err
		})},
		{"future schema", "schema version 999", rawBolt(t, func(tx *bbolt.Tx) error {
			for _, name := range []string{"meta", "incidents", "open_by_dedup", "alerts", "timeline", "outbox", "outbox_pending"} {
				if _, err := tx.CreateBucket([]byte(name)); err != nil {
					return err
				}
			}
			return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("999"))
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "responder.db")
			if err := os.WriteFile(target, whole, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := bolt.WriteFile(target, func(w io.Writer) (int64, error) {
				n, err := w.Write(tc.data)
				return int64(n), err
			})
			if err == nil {
				t.Fatalf("WriteFile of %s = nil error, want a refusal", tc.name)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			after, rerr := os.ReadFile(target)
			if rerr != nil || !bytes.Equal(after, whole) {
				t.Errorf("the target changed after a refused copy (%v)", rerr)
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".*partial*"))
			if len(left) > 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// Restore refuses a held data directory, keeps the file it replaces, runs
// prepare on the copy before it is in place, and refuses a bad backup
// without touching the directory.
func TestRestore(t *testing.T) {
	src := filepath.Join(t.TempDir(), "backup.db")
	db, err := bolt.Open(src, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		storetest.Update(t, db, writeNewIncident)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 8, 3, 15, 0, 0, time.UTC)

	dir := t.TempDir()
	path := filepath.Join(dir, "responder.db")
	live := openAt(t, path, bolt.Options{})
	storetest.Update(t, live, writeNewIncident)
	if _, err := bolt.Restore(src, path, now, nil); !errors.Is(err, bolt.ErrHeld) {
		t.Fatalf("Restore into a held file = %v, want ErrHeld", err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}

	prepared := 0
	r, err := bolt.Restore(src, path, now, func(db *bolt.DB) error {
		prepared = countIncidents(t, db)
		return nil
	})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if prepared != 3 || r.Incidents != 3 {
		t.Errorf("prepare saw %d incidents, summary %d; want 3 each", prepared, r.Incidents)
	}
	want := path + ".before-restore-20261208T031500Z"
	if r.Previous != want {
		t.Errorf("Previous = %q, want %q", r.Previous, want)
	}
	kept := openAt(t, want, bolt.Options{})
	if n := countIncidents(t, kept); n != 1 {
		t.Errorf("the file moved aside has %d incidents, want the 1 it had", n)
	}
	restored := openAt(t, path, bolt.Options{})
	if n := countIncidents(t, restored); n != 3 {
		t.Errorf("restored file has %d incidents, want 3", n)
	}
	if err := restored.Close(); err != nil {
		t.Fatal(err)
	}

	bad := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(bad, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(dir)
	if _, err := bolt.Restore(bad, path, now.Add(time.Hour), nil); err == nil {
		t.Fatal("Restore of a bad backup = nil error")
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Errorf("a refused restore changed the directory: %d entries, then %d", len(before), len(after))
	}
	failing := errors.New("prepare failed")
	if _, err := bolt.Restore(src, path, now.Add(2*time.Hour), func(*bolt.DB) error { return failing }); !errors.Is(err, failing) {
		t.Errorf("Restore with a failing prepare = %v, want its error", err)
	}
	after, _ = os.ReadDir(dir)
	if len(after) != len(before) {
		t.Errorf("a restore whose prepare failed changed the directory: %d entries, then %d", len(before), len(after))
	}
}

// A database too broken to open is what a restore is for: it is replaced,
// and kept; a second restore in the same second keeps the first's file
// under a name of its own.
func TestRestoreOverBrokenFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "backup.db")
	db, err := bolt.Open(src, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Update(t, db, writeNewIncident)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 8, 3, 15, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		data []byte
	}{{"empty", nil}, {"garbage", bytes.Repeat([]byte("junk"), 5000)}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "responder.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := bolt.Restore(src, path, now, nil)
			if err != nil {
				t.Fatalf("Restore over a %s file: %v", tc.name, err)
			}
			kept, err := os.ReadFile(r.Previous)
			if err != nil || !bytes.Equal(kept, tc.data) {
				t.Errorf("the %s file was not kept as it was at %q (%v)", tc.name, r.Previous, err)
			}
			again, err := bolt.Restore(src, path, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if again.Previous != r.Previous+"-2" {
				t.Errorf("second restore kept the file as %q, want %q", again.Previous, r.Previous+"-2")
			}
			if kept, _ := os.ReadFile(r.Previous); !bytes.Equal(kept, tc.data) {
				t.Errorf("the second restore overwrote the first one's kept file")
			}
			if _, err := bolt.Verify(path); err != nil {
				t.Errorf("restored file: %v", err)
			}
		})
	}
}

// WriteFile never replaces a file a daemon holds (a backup aimed at the
// live database by mistake).
func TestWriteFileRefusesHeldTarget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	live := openAt(t, path, bolt.Options{})
	storetest.Update(t, live, writeNewIncident)
	var buf bytes.Buffer
	if _, err := live.Backup(&buf, nil); err != nil {
		t.Fatal(err)
	}
	_, err := bolt.WriteFile(path, func(w io.Writer) (int64, error) { return io.Copy(w, bytes.NewReader(buf.Bytes())) })
	if !errors.Is(err, bolt.ErrHeld) {
		t.Fatalf("WriteFile over a held file = %v, want ErrHeld", err)
	}
	if n := countIncidents(t, live); n != 1 {
		t.Errorf("the live database has %d incidents, want 1", n)
	}
}
