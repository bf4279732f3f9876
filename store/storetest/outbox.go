package storetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

func openWithIncidents(t *testing.T, open Opener, ids ...string) store.DB {
	t.Helper()
	db := mustOpen(t, open)
	Update(t, db, func(tx store.Tx) error {
		for _, id := range ids {
			if _, err := tx.NextIncidentID(); err != nil {
				return err
			}
			if err := tx.PutIncident(NewIncident(id, store.StatusOpen, store.SourceManual, id)); err != nil {
				return err
			}
		}
		return nil
	})
	return db
}

func enqueue(t *testing.T, db store.DB, ins ...*store.Intent) {
	t.Helper()
	Update(t, db, func(tx store.Tx) error {
		for _, in := range ins {
			if err := tx.Enqueue(in); err != nil {
				return err
			}
		}
		return nil
	})
}

func seqs(ins []store.Intent) []uint64 {
	out := []uint64{}
	for _, in := range ins {
		out = append(out, in.Seq)
	}
	return out
}

// Enqueue numbers intents, fills Key and State, and puts them in the
// pending index; a finished intent (sent or failed) leaves it and a
// pending one that is written again stays once; SkipIntent takes one out
// and leaves its record.
func testOutboxPendingIndex(t *testing.T, open Opener) {
	db := openWithIncidents(t, open, "INC-1", "INC-2")
	a := &store.Intent{IncidentID: "INC-1", Channel: "slack", Target: "#inc", Event: "opened", Text: "a", CreatedAt: T0, NextAt: T0}
	b := &store.Intent{IncidentID: "INC-2", Channel: "email", Target: "x@example.com", Event: "opened", Key: "mine", CreatedAt: T0, NextAt: T0}
	c := &store.Intent{IncidentID: "INC-1", Channel: "log", Target: "log", Event: "note", CreatedAt: T0, NextAt: T0}
	enqueue(t, db, a, b, c)
	if a.Seq == 0 || a.Seq >= b.Seq || b.Seq >= c.Seq {
		t.Fatalf("sequences %d, %d, %d: want increasing from 1", a.Seq, b.Seq, c.Seq)
	}
	if a.State != store.IntentPending || a.Key == "" || b.Key != "mine" {
		t.Errorf("Enqueue set state %q key %q (and kept %q): want pending, a key, the given key", a.State, a.Key, b.Key)
	}
	View(t, db, func(tx store.Tx) error {
		got, err := tx.PendingIntents(0, 0)
		if err != nil || !reflect.DeepEqual(seqs(got), []uint64{a.Seq, b.Seq, c.Seq}) {
			t.Errorf("PendingIntents = %v, %v; want %v", seqs(got), err, []uint64{a.Seq, b.Seq, c.Seq})
		}
		if len(got) == 3 && (got[0].Text != "a" || got[0].Target != "#inc" || !got[0].CreatedAt.Equal(T0)) {
			t.Errorf("PendingIntents[0] = %+v, want the intent as enqueued", got[0])
		}
		ss, err := tx.PendingSeqs(0, 0)
		if err != nil || !reflect.DeepEqual(ss, []uint64{a.Seq, b.Seq, c.Seq}) {
			t.Errorf("PendingSeqs = %v, %v; want %v", ss, err, []uint64{a.Seq, b.Seq, c.Seq})
		}
		return nil
	})

	sent := T0.Add(time.Second)
	Update(t, db, func(tx store.Tx) error {
		in, err := tx.Intent(a.Seq)
		if err != nil {
			return err
		}
		in.State, in.SentAt, in.Attempts = store.IntentSent, &sent, 1
		if err := tx.PutIntent(in); err != nil {
			return err
		}
		c.Attempts, c.LastError = 1, "timeout"
		if err := tx.PutIntent(c); err != nil { // still pending
			return err
		}
		return tx.SkipIntent(b.Seq)
	})
	View(t, db, func(tx store.Tx) error {
		got, err := tx.PendingIntents(0, 0)
		if err != nil || !reflect.DeepEqual(seqs(got), []uint64{c.Seq}) {
			t.Errorf("PendingIntents after delivery = %v, %v; want only %d", seqs(got), err, c.Seq)
		}
		if len(got) == 1 && (got[0].Attempts != 1 || got[0].LastError != "timeout") {
			t.Errorf("pending intent = %+v, want its new state", got[0])
		}
		in, err := tx.Intent(a.Seq)
		if err != nil || in.State != store.IntentSent || in.SentAt == nil || !in.SentAt.Equal(sent) {
			t.Errorf("Intent(%d) = %+v, %v; want sent at %s", a.Seq, in, err, sent)
		}
		if in, err := tx.Intent(b.Seq); err != nil || in.State != store.IntentPending {
			t.Errorf("skipped Intent(%d) = %+v, %v; want its record kept as it was", b.Seq, in, err)
		}
		if _, err := tx.Intent(c.Seq + 100); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Intent(unknown) = %v, want ErrNotFound", err)
		}
		return nil
	})
}

// PendingIntents and PendingSeqs page through the pending index by
// sequence: after and limit, so that a large outbox is read in pages.
func testOutboxPaging(t *testing.T, open Opener) {
	db := openWithIncidents(t, open, "INC-1")
	var ins []*store.Intent
	for range 25 {
		ins = append(ins, &store.Intent{IncidentID: "INC-1", Channel: "log", Target: "log", Event: "note", CreatedAt: T0, NextAt: T0})
	}
	enqueue(t, db, ins...)
	var all []uint64
	for _, in := range ins {
		all = append(all, in.Seq)
	}
	View(t, db, func(tx store.Tx) error {
		var got []uint64
		after := uint64(0)
		for range 10 {
			page, err := tx.PendingIntents(after, 10)
			if err != nil {
				return err
			}
			if len(page) > 10 {
				t.Errorf("page of %d, want at most 10", len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, seqs(page)...)
			after = page[len(page)-1].Seq
		}
		if !reflect.DeepEqual(got, all) {
			t.Errorf("pages of PendingIntents = %v, want %v", got, all)
		}
		ss, err := tx.PendingSeqs(all[9], 5)
		if err != nil || !reflect.DeepEqual(ss, all[10:15]) {
			t.Errorf("PendingSeqs(after %d, 5) = %v, %v; want %v", all[9], ss, err, all[10:15])
		}
		return nil
	})
}

// An incident's intents are listed in order, delivered or not, and only
// its own.
func testIncidentIntents(t *testing.T, open Opener) {
	db := openWithIncidents(t, open, "INC-1", "INC-2")
	a := &store.Intent{IncidentID: "INC-1", Channel: "slack", Target: "#a", Event: "opened", CreatedAt: T0, NextAt: T0}
	b := &store.Intent{IncidentID: "INC-2", Channel: "slack", Target: "#b", Event: "opened", CreatedAt: T0, NextAt: T0}
	c := &store.Intent{IncidentID: "INC-1", Channel: "email", Target: "x@example.com", Event: "resolved", CreatedAt: T0, NextAt: T0}
	enqueue(t, db, a, b, c)
	Update(t, db, func(tx store.Tx) error {
		a.State = store.IntentFailed
		return tx.PutIntent(a)
	})
	View(t, db, func(tx store.Tx) error {
		got, err := tx.IncidentIntents("INC-1")
		if err != nil || !reflect.DeepEqual(seqs(got), []uint64{a.Seq, c.Seq}) {
			t.Fatalf("IncidentIntents(INC-1) = %v, %v; want %v", seqs(got), err, []uint64{a.Seq, c.Seq})
		}
		if got[0].State != store.IntentFailed || got[1].State != store.IntentPending {
			t.Errorf("states %s, %s; want failed, pending", got[0].State, got[1].State)
		}
		if got, err := tx.IncidentIntents("INC-3"); err != nil || len(got) != 0 {
			t.Errorf("IncidentIntents(INC-3) = %v, %v; want none", got, err)
		}
		return nil
	})
}

// Idempotency records: absent is ErrNotFound; written, they read back.
func testRequests(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	key := "oncall\x00/api/v1/incidents\x00c2b6f0e4"
	View(t, db, func(tx store.Tx) error {
		if _, err := tx.Request(key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Request(unknown) = %v, want ErrNotFound", err)
		}
		return nil
	})
	want := store.Request{At: T0, Digest: "abc", IncidentID: "INC-7"}
	Update(t, db, func(tx store.Tx) error { return tx.PutRequest(key, want) })
	View(t, db, func(tx store.Tx) error {
		got, err := tx.Request(key)
		if err != nil || got.Digest != want.Digest || got.IncidentID != want.IncidentID || !got.At.Equal(want.At) {
			t.Errorf("Request = %+v, %v; want %+v", got, err, want)
		}
		if _, err := tx.Request(key + "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Request(other key) = %v, want ErrNotFound", err)
		}
		return nil
	})
}

// The first incident of a kind to resolve is remembered: later ones of the
// same kind are told it, other kinds are first of their own.
func testResolvedOfKind(t *testing.T, open Opener) {
	db := openWithIncidents(t, open, "INC-1", "INC-2", "INC-3")
	var first [3]string
	Update(t, db, func(tx store.Tx) error {
		var err error
		if first[0], err = tx.ResolvedOfKind("alertmanager:Down", "INC-2"); err != nil {
			return err
		}
		if first[1], err = tx.ResolvedOfKind("alertmanager:Down", "INC-1"); err != nil {
			return err
		}
		first[2], err = tx.ResolvedOfKind("manual:db", "INC-3")
		return err
	})
	if want := [3]string{"INC-2", "INC-2", "INC-3"}; first != want {
		t.Errorf("ResolvedOfKind = %v, want %v", first, want)
	}
}

// Every resolved incident of a kind is kept, so that ResolvedBefore lists
// the earlier ones newest first, below an id, bounded, across a restart;
// resolving again records nothing twice.
func testResolvedBefore(t *testing.T, open Opener) {
	db := openWithIncidents(t, open, "INC-1", "INC-2", "INC-3", "INC-4", "INC-5")
	Update(t, db, func(tx store.Tx) error {
		for _, r := range []struct{ kind, id string }{
			{"drill:db", "INC-3"}, {"drill:db", "INC-1"}, {"other", "INC-2"}, {"drill:db", "INC-4"}, {"drill:db", "INC-3"}, {"other", "INC-5"},
		} {
			if _, err := tx.ResolvedOfKind(r.kind, r.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, open)
	View(t, db, func(tx store.Tx) error {
		for _, tc := range []struct {
			kind, before string
			limit        int
			want         []string
		}{
			{"drill:db", "", 0, []string{"INC-4", "INC-3", "INC-1"}},
			{"drill:db", "INC-4", 0, []string{"INC-3", "INC-1"}},
			{"drill:db", "INC-4", 1, []string{"INC-3"}},
			{"drill:db", "INC-9", 2, []string{"INC-4", "INC-3"}},
			{"drill:db", "INC-1", 0, nil},
			{"other", "", 0, []string{"INC-5", "INC-2"}},
			{"never", "", 0, nil},
		} {
			got, err := tx.ResolvedBefore(tc.kind, tc.before, tc.limit)
			if err != nil {
				return err
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ResolvedBefore(%q, %q, %d) = %v, want %v", tc.kind, tc.before, tc.limit, got, tc.want)
			}
		}
		if _, err := tx.ResolvedBefore("drill:db", "INC-x", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ResolvedBefore with a bad id: %v, want ErrNotFound", err)
		}
		return nil
	})
}

// A heartbeat's state is found by its name once recorded, survives a
// restart, and is rewritten in place.
func testHeartbeats(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	View(t, db, func(tx store.Tx) error {
		if _, err := tx.Heartbeat("watchdog"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Heartbeat before any ping = %v, want ErrNotFound", err)
		}
		return nil
	})
	Update(t, db, func(tx store.Tx) error {
		return tx.PutHeartbeat(&store.Heartbeat{Name: "watchdog", LastPing: T0, Pings: 1})
	})
	Update(t, db, func(tx store.Tx) error {
		return tx.PutHeartbeat(&store.Heartbeat{Name: "watchdog", LastPing: T0.Add(time.Minute), Pings: 2})
	})
	Update(t, db, func(tx store.Tx) error {
		return tx.PutHeartbeat(&store.Heartbeat{Name: "backup\x00job", LastPing: T0, Pings: 1})
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, open)
	View(t, db, func(tx store.Tx) error {
		h, err := tx.Heartbeat("watchdog")
		if err != nil || h.Pings != 2 || !h.LastPing.Equal(T0.Add(time.Minute)) {
			t.Errorf("Heartbeat(watchdog) after a restart = %+v, %v; want the second ping", h, err)
		}
		if h, err := tx.Heartbeat("backup\x00job"); err != nil || h.Pings != 1 {
			t.Errorf("Heartbeat(backup\\x00job) = %+v, %v", h, err)
		}
		return nil
	})
}
