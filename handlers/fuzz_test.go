package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

func seedFuzz(f *testing.F, prefix string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", prefix+"*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s*.json: %v", prefix, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[`))
}

// checkRefusal: a refused body is always a 400 with a message, never a
// panic or a server error.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	var ie *incident.Error
	switch {
	case errors.As(err, &ae) && ae.status == 400 && ae.msg != "":
	case errors.As(err, &ie) && ie.Kind == incident.Invalid && ie.Msg != "":
	default:
		t.Fatalf("refusal %v is not a 400 with a message", err)
	}
}

func FuzzDecodeAlertmanager(f *testing.F) {
	seedFuzz(f, "am_")
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := decodeAlertmanager(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if msg.Version != "4" || strings.TrimSpace(msg.GroupKey) == "" || len(msg.Alerts) == 0 {
			t.Fatalf("accepted an invalid webhook: version %q groupKey %q alerts %d", msg.Version, msg.GroupKey, len(msg.Alerts))
		}
		for i, a := range msg.Alerts {
			if a.Fingerprint == "" || (a.Status != store.AlertFiring && a.Status != store.AlertResolved) || a.StartsAt.IsZero() || len(a.Labels) == 0 {
				t.Fatalf("accepted alert %d with fingerprint %q status %q start %v labels %d", i, a.Fingerprint, a.Status, a.StartsAt, len(a.Labels))
			}
		}
	})
}

func FuzzDecodeOpsGenie(f *testing.F) {
	seedFuzz(f, "og_")
	f.Add([]byte(`{"action":"Create","alert":{"alias":"a","message":"m","priority":3,"details":{"x":[1,{"y":null}]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := decodeOpsGenie(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if msg.Action == "" || msg.Alert.Alias == "" {
			t.Fatalf("accepted action %q alias %q", msg.Action, msg.Alert.Alias)
		}
		if msg.Action == "Create" && strings.TrimSpace(msg.Alert.Message) == "" {
			t.Fatalf("accepted a Create without a message")
		}
		_ = msg.Alert.Labels()
	})
}

// FuzzDeclare drives the people-facing endpoint with arbitrary bodies
// through the real server and a real store: any body gets 201 or a 4xx,
// never a 5xx, and a refused body writes nothing.
func FuzzDeclare(f *testing.F) {
	f.Add([]byte(`{"title":"x","severity":"S2","labels":{"env":"production"}}`))
	f.Add([]byte(`{"title":"x","severity":"S9"}`))
	f.Add([]byte(`{"title":5}`))
	f.Add([]byte("{\"title\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEnv(t)
		before := e.snapshot()
		r := e.do("POST", "/api/v1/incidents", tokWrite, body)
		switch {
		case r.status == 201:
		case r.status >= 400 && r.status < 500:
			r.errorText(t)
			if e.snapshot() != before {
				t.Fatalf("refused body %q changed the store", body)
			}
		default:
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
	})
}

// fuzzEnv is a server on a fresh store with a drill scenario and webhooks
// capped at a few alerts; with seed, it holds one open incident (INC-1).
func fuzzEnv(t *testing.T, seed bool) *testEnv {
	t.Helper()
	e := newEnv(t, func(s envSetup) {
		s.cfg.MaxAlerts = 3
		s.inc.Scenarios = map[string]incident.Scenario{"db": {Title: "Database down", Severity: policy.S2, Labels: map[string]string{"service": "db"}}}
	})
	if !seed {
		return e
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(`{"title":"seed","severity":"S2"}`)); r.status != http.StatusCreated {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	return e
}

// checkAnswer: a request gets a 2xx or a 4xx with an {"error"}, never a
// 5xx; a refused one writes nothing (before is the store as it was).
func checkAnswer(t *testing.T, e *testEnv, r response, before string, what string) {
	t.Helper()
	switch {
	case r.status >= 200 && r.status < 300:
	case r.status >= 400 && r.status < 500:
		if r.header.Get("Content-Type") != "" && strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			r.errorText(t)
		}
		if e.snapshot() != before {
			t.Fatalf("refused %s (%d) changed the store", what, r.status)
		}
	default:
		t.Fatalf("status %d for %s: %s", r.status, what, r.body)
	}
}

// fuzzBody drives one people-facing endpoint of INC-1 with arbitrary
// bodies through the real server and store.
func fuzzBody(f *testing.F, method, path string, seed bool, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte("{\"by\":\"\xff\"}"))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := fuzzEnv(t, seed)
		before := e.snapshot()
		r := e.do(method, path, tokWrite, body)
		checkAnswer(t, e, r, before, fmt.Sprintf("body %q", body))
		if r.status < 300 {
			var v view
			r.json(t, &v)
			if v.ID == "" || v.Severity == "" {
				t.Fatalf("accepted, answered %s", r.body)
			}
		}
	})
}

func FuzzRoles(f *testing.F) {
	fuzzBody(f, http.MethodPut, "/api/v1/incidents/INC-1/roles", true,
		`{"recovery_lead":"maria","comms_lead":"dev","by":"maria"}`,
		`{"recovery_lead":"maria","comms_lead":"MARIA"}`,
		`{"comms_lead":null}`, `{"recovery_lead":5}`)
}

func FuzzUpdate(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/api/v1/incidents/INC-1/updates", true,
		`{"text":"rolling back","eta":"2030-01-01T00:00:00Z","by":"dev"}`,
		`{"text":"x","eta":"2000-01-01T00:00:00Z"}`,
		`{"text":"x","eta":"tomorrow"}`, `{"text":""}`,
		`{"text":"x","eta":"9999-12-31T23:59:59-01:00"}`, `{"text":"x","eta":"0000-01-01T00:00:00+01:00"}`)
}

func FuzzAckResolve(f *testing.F) {
	for _, s := range []string{`{"by":"maria"}`, `{"by":"maria","summary":"rolled back"}`, ``, `{"who":"x"}`, `{"summary":5}`} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	f.Fuzz(func(t *testing.T, resolve bool, body []byte) {
		e := fuzzEnv(t, true)
		path := "/api/v1/incidents/INC-1/ack"
		if resolve {
			path = "/api/v1/incidents/INC-1/resolve"
		}
		before := e.snapshot()
		r := e.do(http.MethodPost, path, tokWrite, body)
		checkAnswer(t, e, r, before, fmt.Sprintf("%s body %q", path, body))
	})
}

func FuzzDrill(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/api/v1/drills", false,
		`{"scenario":"db","by":"maria"}`, `{"scenario":"db","severity":"S4"}`,
		`{"scenario":"nope"}`, `{"scenario":"db","severity":"S0"}`)
}

// FuzzListQuery sends arbitrary query strings to the list: 200 with a
// list, or 400, never more than asked for, never a write.
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{"", "status=open", "severity=s2&limit=1", "limit=500&before=INC-2", "before=INC-0",
		"limit=-1", "limit=99999999999999999999", "status=open&status=resolved", "before=INC-18446744073709551616",
		"a=%zz", "token=x", "%00=%00", ";;&&=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e := fuzzEnv(t, true)
		before := e.snapshot()
		req := httptest.NewRequest(http.MethodGet, "/api/v1/incidents", nil)
		req.URL.RawQuery = raw
		req.Header.Set("Authorization", "Bearer "+tokRead)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		r := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		checkAnswer(t, e, r, before, fmt.Sprintf("query %q", raw))
		if r.status == http.StatusOK {
			var page listResponse
			r.json(t, &page)
			if len(page.Incidents) > incident.MaxListLen || page.Incidents == nil {
				t.Fatalf("query %q: %d incidents", raw, len(page.Incidents))
			}
		} else if r.status != http.StatusBadRequest {
			t.Fatalf("query %q: status %d", raw, r.status)
		}
		if e.snapshot() != before {
			t.Fatalf("a list changed the store")
		}
	})
}

// FuzzIncidentID puts arbitrary ids (traversals, encodings, huge numbers)
// in the incident paths: only INC-1 is found, nothing else is read or
// written, and the error never grows with the id.
func FuzzIncidentID(f *testing.F) {
	for _, s := range []string{"INC-1", "INC-2", "INC-01", "inc-1", "INC-1/../INC-2", "..%2F..%2Fetc", "../../metrics",
		"INC-18446744073709551615", "INC-18446744073709551616", "INC--1", "INC-1%00", "\xff\xfe", "INC-1?x=1", ""} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, id string, op uint8) {
		e := fuzzEnv(t, true)
		before := e.snapshot()
		method, suffix, body := http.MethodGet, "", []byte(nil)
		switch op % 3 {
		case 1:
			suffix = "/postmortem"
		case 2:
			method, suffix, body = http.MethodPost, "/ack", []byte(`{"by":"fuzz"}`)
		}
		req := httptest.NewRequest(method, "/api/v1/incidents/INC-1", bytes.NewReader(body))
		req.URL.Path = "/api/v1/incidents/" + id + suffix
		req.URL.RawPath = ""
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+tokAll)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		r := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		checkAnswer(t, e, r, before, fmt.Sprintf("%s id %q", method, id))
		if r.status < 300 && id != "INC-1" {
			t.Fatalf("%s id %q: %d: only INC-1 exists", method, id, r.status)
		}
		if r.status >= 400 && len(r.body) > 512 {
			t.Fatalf("error of %d bytes for id %q", len(r.body), id)
		}
		if method == http.MethodGet && e.snapshot() != before {
			t.Fatalf("a read changed the store")
		}
	})
}

// FuzzBearer sends arbitrary Authorization values: only the exact token
// (scheme in any case, space around) is let in, the answer never repeats
// what was sent, and nothing is written.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer " + tokRead, "bearer  " + tokRead + " ", "Bearer " + tokWrite, "Bearer", "Basic " + tokRead,
		"Bearer " + tokRead + "x", "Bearer " + tokRead[:len(tokRead)-1], "", " ", "Bearer \x00", "Bearer " + tokRead + "\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		e := fuzzEnv(t, false)
		before := e.snapshot()
		req := httptest.NewRequest(http.MethodGet, "/api/v1/incidents", nil)
		req.Header["Authorization"] = []string{header}
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		r := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		checkAnswer(t, e, r, before, fmt.Sprintf("Authorization %q", header))
		scheme, presented, _ := strings.Cut(strings.TrimSpace(header), " ")
		presented = strings.TrimSpace(presented)
		ok := strings.EqualFold(scheme, "Bearer") && (presented == tokRead || presented == tokAll)
		switch {
		case ok && r.status != http.StatusOK:
			t.Fatalf("%q: %d, want 200", header, r.status)
		case !ok && r.status == http.StatusOK:
			t.Fatalf("%q was let in", header)
		case !ok && r.status != http.StatusUnauthorized && r.status != http.StatusForbidden:
			t.Fatalf("%q: %d, want 401 or 403", header, r.status)
		}
		if len(presented) >= 8 && r.status != http.StatusOK && bytes.Contains(r.body, []byte(presented)) {
			t.Fatalf("the answer repeats the credential %q", presented)
		}
	})
}

// FuzzWebhook ingests arbitrary bodies through the real server and store
// (webhooks capped at 3 alerts): 202 or 4xx, never 5xx, nothing written
// for a refused body, and a capped webhook says what it kept.
func FuzzWebhook(f *testing.F) {
	for _, prefix := range []string{"am_", "og_"} {
		files, _ := filepath.Glob(filepath.Join("testdata", prefix+"*.json"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(prefix == "og_", b)
		}
	}
	f.Add(false, floodAlerts(5))
	// Times that parse but cannot be stored (outside the years 0000 to
	// 9999 in UTC) once answered 500.
	for _, seed := range []struct {
		og             bool
		file, old, new string
	}{
		{false, "am_firing_v034.json", `"startsAt": "2026-11-12T14:03:27.318Z"`, `"startsAt": "9999-12-31T23:59:59-23:59"`},
		{false, "am_firing_old.json", `"startsAt": "2026-11-12T11:48:03.904Z"`, `"startsAt": "0000-01-01T00:00:00+23:59"`},
		{true, "og_create.json", `"createdAt": 1794493412450`, `"createdAt": 9223372036854775807`},
		{true, "og_create.json", `"createdAt": 1794493412450`, `"createdAt": -62167219200001`},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", seed.file))
		if err != nil {
			f.Fatal(err)
		}
		if !bytes.Contains(b, []byte(seed.old)) {
			f.Fatalf("%s lacks %s", seed.file, seed.old)
		}
		f.Add(seed.og, bytes.Replace(b, []byte(seed.old), []byte(seed.new), 1))
	}
	f.Fuzz(func(t *testing.T, og bool, body []byte) {
		e := fuzzEnv(t, false)
		path := "/api/v1/alerts/alertmanager"
		if og {
			path = "/api/v1/alerts/opsgenie"
		}
		before := e.snapshot()
		r := e.do(http.MethodPost, path, tokIngest, body)
		checkAnswer(t, e, r, before, fmt.Sprintf("%s body %q", path, body))
		if r.status != http.StatusAccepted {
			return
		}
		var out ingestResponse
		r.json(t, &out)
		if tr := out.Truncated; tr != nil && (og || tr.Kept != 3 || tr.Received != tr.Kept+tr.LeftOut || tr.LeftOut < 1) {
			t.Fatalf("truncated %+v", *tr)
		}
		for _, inc := range out.Incidents {
			v := e.incident(inc.ID)
			if len(v.Alerts) > 3 && !og {
				t.Fatalf("%d alerts stored, the cap is 3", len(v.Alerts))
			}
			if v.AlertsFiring < 0 || v.AlertsFiring > v.AlertsTotal {
				t.Fatalf("firing %d of %d", v.AlertsFiring, v.AlertsTotal)
			}
		}
	})
}

// FuzzJSONDepth compares the nesting bound with the decoder: a valid body
// is refused for its depth exactly when it nests deeper than maxJSONDepth.
func FuzzJSONDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[[[]]]`, `{"a":"[[[[["}`, `"\"["`, strings.Repeat("[", 33) + strings.Repeat("]", 33),
		strings.Repeat("[", 32) + strings.Repeat("]", 32), `{"a":[{"b":[{"c":"\\"}]}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			_ = tooDeep(body)
			return
		}
		depth, maxDepth := 0, 0
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch tok {
			case json.Delim('{'), json.Delim('['):
				depth++
				maxDepth = max(maxDepth, depth)
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
		}
		if got := tooDeep(body) >= 0; got != (maxDepth > maxJSONDepth) {
			t.Fatalf("depth %d: tooDeep says %v", maxDepth, got)
		}
	})
}
