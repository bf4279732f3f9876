package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// writeNewIncident is the write of a first firing alert: a fresh incident
// document, its alert and its opening timeline entry, in one transaction.
func writeNewIncident(tx store.Tx) error {
	id, err := tx.NextIncidentID()
	if err != nil {
		return err
	}
	now := time.Date(2026, time.March, 30, 7, 30, 0, 0, time.UTC)
	lbls := map[string]string{"alertname": "HighErrorRate", "severity": "critical", "env": "production", "service": "api"}
	inc := &store.Incident{
		ID: id, Title: "HighErrorRate on api", Severity: "S1", Status: store.StatusOpen,
		Source: store.SourceAlertmanager, DedupKey: `{}/{severity="critical"}:{alertname="HighErrorRate"}/` + id,
		Labels: lbls, Team: "sre", CreatedAt: now, UpdatedAt: now, AlertsFiring: 1, AlertsTotal: 1,
	}
	if err := tx.PutIncident(inc); err != nil {
		return err
	}
	a := &store.Alert{
		Fingerprint: "c8a1f3e2b7d94a10", Status: store.AlertFiring, StartsAt: now, Labels: lbls,
		Annotations:  map[string]string{"summary": "5xx ratio above 5% for 5 minutes", "runbook_url": "https://runbooks.example/api"},
		GeneratorURL: "http://prometheus.example/graph?g0.expr=...", Severity: "S1", UpdatedAt: now,
	}
	if err := tx.PutAlert(id, a); err != nil {
		return err
	}
	return tx.AppendTimeline(id, store.Entry{At: now, Kind: store.KindOpened, Text: "opened by Alertmanager: HighErrorRate"})
}

func openBench(b *testing.B) *bolt.DB {
	b.Helper()
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	return db
}

// BenchmarkUpdateParallel measures durable writes (fsync on every commit)
// from many concurrent callers, which the single writer groups into shared
// transactions.
func BenchmarkUpdateParallel(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	b.SetParallelism(32) // 32 goroutines per GOMAXPROCS, like a burst of webhooks
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := db.Update(ctx, writeNewIncident); err != nil {
				b.Errorf("Update: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkUpdateSerial is one caller writing one incident at a time: every
// write pays its own commit and fsync.
func BenchmarkUpdateSerial(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := db.Update(ctx, writeNewIncident); err != nil {
			b.Fatalf("Update: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
