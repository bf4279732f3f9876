package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/responder-sre/responder/store"
)

// Times that are valid RFC 3339 but fall outside the years 0000 to 9999
// once in UTC cannot be stored. A webhook is never refused for one: the
// alert is kept with the time clamped (the same on every re-send) or, for
// an OpsGenie alert's creation, replaced by the time received, and the
// timeline says which field and why. Nothing answers 5xx.
func TestAbsurdTimesInWebhooks(t *testing.T) {
	e := newEnv(t)
	late := strings.Replace(string(readTestdata(t, "am_firing_old.json")), `"startsAt": "2026-11-12T11:48:03.904Z"`,
		`"startsAt": "9999-12-31T23:59:59-01:00"`, 1)
	if late == string(readTestdata(t, "am_firing_old.json")) {
		t.Fatal("the sample's startsAt was not replaced")
	}
	id := e.postAM([]byte(late))[0].ID
	v := e.incident(id)
	if len(v.Alerts) != 1 || v.Alerts[0].StartsAt.Year() != 9999 {
		t.Fatalf("alerts %+v, want the alert kept with its start clamped to 9999", v.Alerts)
	}
	wantNote := func(v view, want string) {
		t.Helper()
		for _, en := range v.Timeline {
			if en.Kind == store.KindNote && strings.Contains(en.Text, want) {
				return
			}
		}
		t.Errorf("no timeline note saying %q: %+v", want, v.Timeline)
	}
	wantNote(v, "alerts[0].startsAt of DiskFillingUp")
	wantNote(v, "outside the years 0000 to 9999 in UTC: kept as 9999-12-31T23:59:59Z")
	// The same webhook again changes nothing.
	e.postAM([]byte(late))
	if again := e.incident(id); len(again.Timeline) != len(v.Timeline) {
		t.Errorf("a re-sent webhook added %d timeline entries", len(again.Timeline)-len(v.Timeline))
	}

	e.postAM(readTestdata(t, "am_firing_v034.json"))
	early := strings.Replace(string(readTestdata(t, "am_resolved_v034.json")), `"endsAt": "2026-11-12T14:36:57.318Z"`,
		`"endsAt": "0000-01-01T00:00:00+01:00"`, 1)
	res := e.postAM([]byte(early))
	wantNote(e.incident(res[0].ID), "alerts[0].endsAt")

	og := strings.Replace(string(readTestdata(t, "og_create.json")), `"createdAt": 1794493412450`, `"createdAt": 253402300800000`, 1)
	ogID := e.postOG([]byte(og))[0].ID
	ov := e.incident(ogID)
	wantNote(ov, "createdAt 253402300800000 ms is outside the years 0000 to 9999")
	if len(ov.Alerts) != 1 || !ov.Alerts[0].StartsAt.Equal(e.clock()) {
		t.Errorf("OpsGenie alert %+v, want it kept, started when received (%s)", ov.Alerts, e.clock())
	}
}

// A person's time that cannot be kept, or is not a time at all, is a 400
// naming the field with an example of one that is.
func TestAbsurdTimesFromPeople(t *testing.T) {
	e := newEnv(t)
	var v view
	e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"Checkout down","severity":"S2"}`, http.StatusCreated).json(t, &v)
	path := "/api/v1/incidents/" + v.ID + "/updates"
	before := e.snapshot()
	for _, eta := range []string{`"9999-12-31T23:59:59-01:00"`, `"0000-01-01T00:00:00+01:00"`, `"tomorrow"`, `5`, `"2026-11-22 03:04"`} {
		r := e.do(http.MethodPost, path, tokWrite, []byte(`{"text":"rolling back","eta":`+eta+`}`))
		msg := r.errorText(t)
		if r.status != http.StatusBadRequest || !strings.HasPrefix(msg, "eta: ") || !strings.Contains(msg, "like 20") {
			t.Errorf("eta %s: %d %q, want 400 naming eta with an example", eta, r.status, msg)
		}
		if strings.Contains(msg, "2006-01-02") {
			t.Errorf("eta %s: the message shows Go's layout: %q", eta, msg)
		}
	}
	if e.snapshot() != before {
		t.Error("a refused update wrote something")
	}
}
