package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

func TestGendb(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"gendb", "--path", path, "--size", "17MiB", "--open", "7", "--per-tx", "20"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() < 17<<20 {
		t.Fatalf("file: %v %v, want at least 17 MiB (bbolt grows its file 16 MiB at a time)", st, err)
	}
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	err = db.View(context.Background(), func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if err != nil {
			return err
		}
		if len(open) != 7 {
			return fmt.Errorf("%d open incidents, want 7", len(open))
		}
		pending, err := tx.PendingIntents(0, 0)
		if err != nil {
			return err
		}
		if len(pending) != 0 {
			return fmt.Errorf("%d pending intents, want none", len(pending))
		}
		page, err := tx.ListIncidents(store.Filter{Status: store.StatusResolved, Limit: 5})
		if err != nil {
			return err
		}
		if len(page.Incidents) != 5 {
			return fmt.Errorf("%d resolved incidents, want 5", len(page.Incidents))
		}
		inc := page.Incidents[0]
		alerts, err := tx.Alerts(inc.ID)
		if err != nil {
			return err
		}
		if len(alerts) != inc.AlertsTotal || len(alerts) == 0 {
			return fmt.Errorf("%s: %d alerts stored, %d counted", inc.ID, len(alerts), inc.AlertsTotal)
		}
		tl, err := tx.Timeline(inc.ID)
		if err != nil {
			return err
		}
		if len(tl) < 2*len(alerts)+4 {
			return fmt.Errorf("%s: timeline of %d entries for %d alerts", inc.ID, len(tl), len(alerts))
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if code := run(context.Background(), []string{"gendb", "--path", path}, &out, &errOut); code == 0 {
		t.Error("gendb over an existing file succeeded")
	}
	if _, err := parseSize("12XB"); err == nil {
		t.Error("size 12XB parsed")
	}
	if n, err := parseSize("3MiB"); err != nil || n != 3<<20 {
		t.Errorf("3MiB: %d %v", n, err)
	}
}
