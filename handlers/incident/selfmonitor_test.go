package incident

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// gaugeOf is the value of the gauge name{heartbeat=hb} in reg, failing the
// test when reg does not have exactly one.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, hb string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var found []float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "heartbeat" && l.GetValue() == hb {
					found = append(found, m.GetGauge().GetValue())
				}
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s{heartbeat=%q}: %d series, want 1", name, hb, len(found))
	}
	return found[0]
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// responder_heartbeat_deadline_timestamp_seconds is the moment the service
// itself calls a heartbeat silent: counted from the start before the first
// ping, from the last ping after it, and from the start again after a
// restart that missed pings. CheckHeartbeats opens nothing just before it
// and the silence incident at it.
func TestHeartbeatDeadlineMetric(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "responder.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	proc := map[policy.Severity]policy.Process{}
	for _, s := range policy.Severities() {
		proc[s] = policy.Process{AutoResolve: true}
	}
	pol := &policy.Policy{DefaultSeverity: policy.S3, Process: proc, Heartbeats: []policy.Heartbeat{
		{Name: "watchdog", Interval: 5 * time.Minute, Grace: time.Minute, Severity: policy.S2},
		{Name: "backup", Interval: time.Hour, Grace: 10 * time.Minute, Severity: policy.S3},
	}}
	t0 := time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC)
	now := t0
	start := func() (*Service, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		return New(Config{ExternalURL: "http://127.0.0.1:9095"}, Deps{Store: db, Policy: pol, Log: zerolog.Nop(),
			Now: func() time.Time { return now }, Registry: reg}), reg
	}
	ctx := context.Background()
	s, reg := start()
	const deadline, lastPing = "responder_heartbeat_deadline_timestamp_seconds", "responder_heartbeat_last_ping_timestamp_seconds"

	// Never pinged: from the start.
	if got, want := gaugeOf(t, reg, deadline, "watchdog"), unixSeconds(t0.Add(6*time.Minute)); got != want {
		t.Errorf("watchdog's deadline before any ping: %v, want %v (start + interval + grace)", got, want)
	}
	if got, want := gaugeOf(t, reg, deadline, "backup"), unixSeconds(t0.Add(70*time.Minute)); got != want {
		t.Errorf("backup's deadline before any ping: %v, want %v", got, want)
	}
	if got := gaugeOf(t, reg, lastPing, "watchdog"); got != 0 {
		t.Errorf("watchdog's last ping before any: %v, want 0", got)
	}

	// Pinged: from the ping.
	now = t0.Add(2 * time.Minute)
	if err := s.Ping(ctx, "watchdog", "test"); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(8 * time.Minute)
	if got := gaugeOf(t, reg, deadline, "watchdog"); got != unixSeconds(at) {
		t.Errorf("watchdog's deadline after a ping at +2m: %v, want %v (ping + 6m)", got, unixSeconds(at))
	}
	if got := gaugeOf(t, reg, lastPing, "watchdog"); got != unixSeconds(now) {
		t.Errorf("watchdog's last ping: %v, want %v", got, unixSeconds(now))
	}

	// The service's own check agrees to the nanosecond.
	silences := func() []string {
		t.Helper()
		var titles []string
		err := db.View(ctx, func(tx store.Tx) error {
			open, err := tx.OpenIncidents()
			for _, inc := range open {
				if inc.Source == store.SourceHeartbeat {
					titles = append(titles, inc.Title)
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return titles
	}
	now = at.Add(-time.Nanosecond)
	if err := s.CheckHeartbeats(ctx); err != nil {
		t.Fatal(err)
	}
	if got := silences(); len(got) != 0 {
		t.Fatalf("just before the deadline: %q open, want none", got)
	}
	now = at
	if err := s.CheckHeartbeats(ctx); err != nil {
		t.Fatal(err)
	}
	if got := silences(); len(got) != 1 || got[0] != "monitoring is silent: watchdog" {
		t.Fatalf("at the deadline: %q open, want the watchdog's silence", got)
	}

	// A restart after the last ping counts from the restart, as the
	// restarted service's check does (the pings missed while it was down
	// are not known).
	now = t0.Add(20 * time.Minute)
	_, reg = start()
	if got, want := gaugeOf(t, reg, deadline, "watchdog"), unixSeconds(now.Add(6*time.Minute)); got != want {
		t.Errorf("watchdog's deadline after a restart at +20m: %v, want %v (restart + 6m)", got, want)
	}
	if got := gaugeOf(t, reg, lastPing, "watchdog"); got != unixSeconds(t0.Add(2*time.Minute)) {
		t.Errorf("watchdog's last ping after the restart: %v, want the stored one", got)
	}
}
