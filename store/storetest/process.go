package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

// Action items get sequential ids, round-trip, and list by incident, by
// state (the open ones through an index that follows every change of
// state) and by owner, oldest first, bounded, across a restart.
func testActionItems(t *testing.T, open Opener) {
	db := openWithIncidents(t, open, "INC-1", "INC-2")
	put := func(id, inc, owner, state string) store.ActionItem {
		return store.ActionItem{ID: id, IncidentID: inc, Title: "do " + id, Owner: owner, State: state, Due: "2026-04-30",
			CreatedAt: T0, CreatedBy: "maria", UpdatedAt: T0}
	}
	var ids []string
	Update(t, db, func(tx store.Tx) error {
		ids = ids[:0]
		for range 4 {
			id, err := tx.NextActionItemID()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		for _, a := range []store.ActionItem{
			put("AI-1", "INC-1", "maria", store.ActionOpen),
			put("AI-2", "INC-2", "dev", store.ActionOpen),
			put("AI-3", "INC-1", "dev", store.ActionOpen),
			put("AI-4", "INC-1", "maria", store.ActionWontDo),
		} {
			if err := tx.PutActionItem(&a); err != nil {
				return err
			}
		}
		return nil
	})
	if strings.Join(ids, " ") != "AI-1 AI-2 AI-3 AI-4" {
		t.Fatalf("NextActionItemID gave %v", ids)
	}
	// AI-3 is done: it leaves the open ones.
	Update(t, db, func(tx store.Tx) error {
		a, err := tx.ActionItem("AI-3")
		if err != nil {
			return err
		}
		a.State = store.ActionDone
		closed := T0.Add(time.Hour)
		a.ClosedAt, a.ClosedBy = &closed, "dev"
		return tx.PutActionItem(a)
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, open)
	View(t, db, func(tx store.Tx) error {
		a, err := tx.ActionItem("AI-3")
		if err != nil || a.State != store.ActionDone || a.ClosedBy != "dev" || a.ClosedAt == nil || !a.ClosedAt.Equal(T0.Add(time.Hour)) ||
			a.Due != "2026-04-30" || a.IncidentID != "INC-1" || a.Title != "do AI-3" {
			t.Errorf("ActionItem(AI-3) after a restart = %+v, %v", a, err)
		}
		for _, bad := range []string{"AI-9", "AI-0", "AI-01", "INC-1", ""} {
			if _, err := tx.ActionItem(bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ActionItem(%q) = %v, want ErrNotFound", bad, err)
			}
		}
		for _, tc := range []struct {
			f    store.ActionFilter
			want string
		}{
			{store.ActionFilter{}, "AI-1 AI-2 AI-3 AI-4"},
			{store.ActionFilter{Incident: "INC-1"}, "AI-1 AI-3 AI-4"},
			{store.ActionFilter{Incident: "INC-2"}, "AI-2"},
			{store.ActionFilter{Incident: "INC-7"}, ""},
			{store.ActionFilter{Incident: "nonsense"}, ""},
			{store.ActionFilter{State: store.ActionOpen}, "AI-1 AI-2"},
			{store.ActionFilter{State: store.ActionDone}, "AI-3"},
			{store.ActionFilter{State: store.ActionWontDo}, "AI-4"},
			{store.ActionFilter{Owner: "maria"}, "AI-1 AI-4"},
			{store.ActionFilter{Owner: "dev", State: store.ActionOpen}, "AI-2"},
			{store.ActionFilter{Incident: "INC-1", State: store.ActionOpen}, "AI-1"},
			{store.ActionFilter{Limit: 2}, "AI-1 AI-2"},
		} {
			got, err := tx.ActionItems(tc.f)
			if err != nil {
				return err
			}
			var names []string
			for _, a := range got {
				names = append(names, a.ID)
			}
			if strings.Join(names, " ") != tc.want {
				t.Errorf("ActionItems(%+v) = %v, want %s", tc.f, names, tc.want)
			}
		}
		return nil
	})
	// The counter goes on after a restart.
	Update(t, db, func(tx store.Tx) error {
		id, err := tx.NextActionItemID()
		if err == nil && id != "AI-5" {
			t.Errorf("NextActionItemID after a restart = %s, want AI-5", id)
		}
		return err
	})
}

// A post-mortem is stored per incident with its state; every version is
// kept in order, a version number is never kept twice, and all of it
// survives a restart.
func testPostmortems(t *testing.T, open Opener) {
	db := openWithIncidents(t, open, "INC-1", "INC-2")
	View(t, db, func(tx store.Tx) error {
		if _, err := tx.Postmortem("INC-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Postmortem before any = %v, want ErrNotFound", err)
		}
		if vs, err := tx.PostmortemVersions("INC-1"); err != nil || len(vs) != 0 {
			t.Errorf("PostmortemVersions before any = %v, %v", vs, err)
		}
		return nil
	})
	for v := 1; v <= 3; v++ {
		Update(t, db, func(tx store.Tx) error {
			at := T0.Add(time.Duration(v) * time.Minute)
			md := strings.Repeat("line of version\n", v*100)
			if err := tx.AddPostmortemVersion("INC-1", store.PostmortemVersion{Version: v, Markdown: md, By: "maria", At: at, Note: "edit"}); err != nil {
				return err
			}
			return tx.PutPostmortem(&store.Postmortem{IncidentID: "INC-1", State: store.PostmortemDrafted, Version: v, Markdown: md, EditedBy: "maria", EditedAt: &at})
		})
	}
	err := db.Update(t.Context(), func(tx store.Tx) error {
		return tx.AddPostmortemVersion("INC-1", store.PostmortemVersion{Version: 2, Markdown: "again", By: "dev", At: T0})
	})
	if err == nil {
		t.Errorf("a version kept twice was accepted")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, open)
	View(t, db, func(tx store.Tx) error {
		p, err := tx.Postmortem("INC-1")
		if err != nil || p.Version != 3 || p.State != store.PostmortemDrafted || p.EditedAt == nil || !strings.HasPrefix(p.Markdown, "line of version") {
			t.Errorf("Postmortem(INC-1) after a restart = %+v, %v", p, err)
		}
		vs, err := tx.PostmortemVersions("INC-1")
		if err != nil || len(vs) != 3 || vs[0].Version != 1 || vs[2].Version != 3 || vs[1].Markdown != strings.Repeat("line of version\n", 200) || vs[1].By != "maria" {
			t.Errorf("PostmortemVersions(INC-1) = %d versions, %v", len(vs), err)
		}
		if vs, err := tx.PostmortemVersions("INC-2"); err != nil || len(vs) != 0 {
			t.Errorf("PostmortemVersions(INC-2) = %v, %v", vs, err)
		}
		return nil
	})
}

// An incident's checklist is empty until written, is rewritten whole, is
// kept apart from the incident document (rewriting the incident leaves it),
// and survives a restart.
func testChecklists(t *testing.T, open Opener) {
	db := openWithIncidents(t, open, "INC-1", "INC-2")
	View(t, db, func(tx store.Tx) error {
		steps, err := tx.Checklist("INC-1")
		if err != nil || steps == nil || len(steps) != 0 {
			t.Errorf("Checklist before any = %#v, %v; want an empty list", steps, err)
		}
		return nil
	})
	at := T0.Add(5 * time.Minute)
	steps := []store.Step{
		{ID: "basic/1", Runbook: "basic", Text: "Determine the severity", State: store.StepDone, By: "maria", At: &at},
		{ID: "basic/2", Runbook: "basic", Text: "Inform the team", Role: "comms", Link: "https://wiki.example/team", State: store.StepOpen},
	}
	Update(t, db, func(tx store.Tx) error { return tx.PutChecklist("INC-1", steps[:1]) })
	Update(t, db, func(tx store.Tx) error { return tx.PutChecklist("INC-1", steps) })
	Update(t, db, func(tx store.Tx) error {
		return tx.PutIncident(NewIncident("INC-1", store.StatusAcknowledged, store.SourceManual, "INC-1"))
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, open)
	View(t, db, func(tx store.Tx) error {
		got, err := tx.Checklist("INC-1")
		if err != nil || len(got) != 2 || got[0].By != "maria" || got[0].At == nil || !got[0].At.Equal(at) || got[1].Link != "https://wiki.example/team" ||
			got[1].State != store.StepOpen {
			t.Errorf("Checklist(INC-1) after a restart = %+v, %v", got, err)
		}
		if got, err := tx.Checklist("INC-2"); err != nil || len(got) != 0 {
			t.Errorf("Checklist(INC-2) = %+v, %v", got, err)
		}
		if _, err := tx.Checklist("nonsense"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Checklist of a bad id = %v, want ErrNotFound", err)
		}
		return nil
	})
}
