package handlers

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// updateGolden reports whether -update was given: rewrite the golden files
// in testdata/ instead of comparing with them. The flag is defined here
// unless another test file of the package defined it first.
var updateGolden = func() func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
	return func() bool { return flag.Lookup("update").Value.String() == "true" }
}()

// withPolicyZone sets the policy's local zone (business hours' location).
func withPolicyZone(t *testing.T, name string) envOption {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return func(s envSetup) { s.incDeps.Policy.BusinessHours.Location = loc }
}

// withManualResolve keeps incidents open when their alerts resolve, so
// that a person resolves them with a summary.
func withManualResolve() envOption {
	return func(s envSetup) {
		for sev, p := range s.incDeps.Policy.Process {
			p.AutoResolve = false
			s.incDeps.Policy.Process[sev] = p
		}
	}
}

func withCheckoutDrill() envOption {
	return func(s envSetup) {
		s.inc.Scenarios = map[string]incident.Scenario{"checkout-down": {
			Title: "Checkout returns 500s", Severity: policy.S2,
			Labels: map[string]string{"service": "checkout-api"}, Description: "Practise failing checkout over to the second region.",
		}}
	}
}

// doWant sends a request and fails the test unless it answers want.
func (e *testEnv) doWant(method, path, token string, body string, want int) response {
	e.t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	r := e.do(method, path, token, b)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// getPostmortem fetches an incident's draft through the router.
func (e *testEnv) getPostmortem(id string) response {
	e.t.Helper()
	return e.do(http.MethodGet, "/api/v1/incidents/"+id+"/postmortem", e.tok(tokRead), nil)
}

// markdown fetches the draft and checks it is a 200 Markdown answer.
func (e *testEnv) markdown(id string) string {
	e.t.Helper()
	r := e.getPostmortem(id)
	if r.status != http.StatusOK {
		e.t.Fatalf("post-mortem of %s: status %d: %s", id, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/markdown; charset=utf-8" {
		e.t.Errorf("post-mortem of %s: Content-Type %q, want text/markdown; charset=utf-8", id, ct)
	}
	return string(r.body)
}

// goldenMarkdown compares got with testdata/name, or rewrites the file with -update.
func goldenMarkdown(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updateGolden() {
		if err := os.WriteFile(path, got, 0o600); err != nil {
			t.Fatalf("write golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -run %s -update to create it): %v", t.Name(), err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs from the draft at line %d (run with -update if the change is meant):\ngot  %q\nwant %q\n\nwhole draft:\n%s", path, i+1, g, w, got)
		}
	}
}

// checkMarkdownTables fails when a Markdown table row has a different number of
// columns than its header: an unescaped | or a line break in a cell.
func checkMarkdownTables(t *testing.T, md string) {
	t.Helper()
	cols := -1
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = -1
			continue
		}
		n := strings.Count(line, "|") - strings.Count(line, `\|`)
		if cols == -1 {
			cols = n
			continue
		}
		if n != cols {
			t.Errorf("line %d has %d column separators, its table's header %d: %q", i+1, n, cols, line)
		}
	}
}

// A full incident: Alertmanager opens it, a person acknowledges, roles are
// assigned, two updates are posted (one with an ETA and text that would
// break a table), the alerts resolve, a person resolves it with a summary.
// The draft is compared with a golden file and checked against the JSON.
func TestPostmortemDraft(t *testing.T) {
	e := newEnv(t, withPolicyZone(t, "Europe/Berlin"), withManualResolve())
	e.setClock(time.Date(2026, 11, 12, 14, 6, 0, 0, time.UTC))
	res := e.postAM(readTestdata(t, "am_firing_v034.json"))
	if len(res) != 1 || !res[0].Created {
		t.Fatalf("firing: %+v, want one new incident", res)
	}
	id := res[0].ID
	base := "/api/v1/incidents/" + id

	e.advance(3 * time.Minute)
	e.doWant(http.MethodPost, base+"/ack", tokWrite, `{"by":"maria.schulz"}`, http.StatusOK)
	e.advance(2*time.Minute + 30*time.Second)
	e.doWant(http.MethodPut, base+"/roles", tokWrite, `{"recovery_lead":"dev.patel","comms_lead":"maria.schulz","by":"maria.schulz"}`, http.StatusOK)
	e.advance(4*time.Minute + 30*time.Second)
	e.doWant(http.MethodPost, base+"/updates", tokWrite,
		`{"text":"Rolled back checkout-api v2.4 | v2.3 is live\nerror rate falling on 10.42.7.15","eta":"2026-11-12T14:45:00Z","by":"maria.schulz"}`, http.StatusCreated)
	e.advance(12 * time.Minute)
	e.postAM(readTestdata(t, "am_partial_resolved_v034.json"))
	e.advance(3 * time.Minute)
	e.doWant(http.MethodPost, base+"/updates", tokWrite, `{"text":"Error rate under 1% on both instances.","by":"maria.schulz"}`, http.StatusCreated)
	e.advance(6*time.Minute + 30*time.Second)
	e.postAM(readTestdata(t, "am_resolved_v034.json"))
	e.advance(2*time.Minute + 30*time.Second)
	e.doWant(http.MethodPost, base+"/resolve", tokWrite, `{"by":"maria.schulz","summary":"A bad release of checkout-api (v2.4) failed one payment in fourteen for 37 minutes; rolling back to v2.3 ended it."}`, http.StatusOK)
	e.advance(time.Hour)

	v := e.incident(id)
	if v.Status != store.StatusResolved || !v.PostmortemRequired {
		t.Fatalf("status %s postmortem_required %v, want resolved and owed (first of its kind)", v.Status, v.PostmortemRequired)
	}
	md := e.markdown(id)
	goldenMarkdown(t, "postmortem.golden.md", []byte(md))
	checkMarkdownTables(t, md)

	// Every timeline entry, at its UTC time.
	if len(v.Timeline) < 10 {
		t.Fatalf("timeline has %d entries: %+v", len(v.Timeline), v.Timeline)
	}
	inCell := strings.NewReplacer("|", `\|`, "\r\n", "<br>", "\n", "<br>", "\r", "<br>") // as a table cell shows it
	for _, en := range v.Timeline {
		row := "| " + en.At.UTC().Format("2006-01-02 15:04:05 UTC") + " | " + en.Kind + " | "
		if !strings.Contains(md, row) {
			t.Errorf("no timeline row starting %q", row)
		}
		if !strings.Contains(md, inCell.Replace(strings.TrimSpace(en.Text))) {
			t.Errorf("timeline entry %s %q missing", en.Kind, en.Text)
		}
	}
	for _, want := range []string{
		"# Post-mortem: " + id + " — checkout-api 5xx error rate above 5%\n",
		"**Post-mortem required: yes.**",
		`"alertmanager:HighErrorRate"`,
		"| Start | 2026-11-12 14:03:27 UTC | 15:03 CET | — | — | first alert 762c2c03437732b3 |",
		"| Detection | 2026-11-12 14:06:00 UTC | 15:06 CET | 2m33s | 2m33s | alertmanager |",
		"| Acknowledgement | 2026-11-12 14:09:00 UTC | 15:09 CET | 3m0s | 5m33s | maria.schulz |",
		"| Roles assigned | 2026-11-12 14:11:30 UTC | 15:11 CET | 2m30s | 8m3s | — |",
		"| First update | 2026-11-12 14:16:00 UTC | 15:16 CET | 4m30s | 12m33s | maria.schulz |",
		"| Resolution | 2026-11-12 14:40:00 UTC | 15:40 CET | 24m0s | 36m33s | maria.schulz |",
		"| Recovery lead | dev.patel |",
		"| Communications lead | maria.schulz |",
		// The update in the list keeps its second line inside the item.
		"- **2026-11-12 14:16:00 UTC** (15:16 CET), maria.schulz: Rolled back checkout-api v2.4 | v2.3 is live\n  error rate falling on 10.42.7.15\n  ETA for recovery: 2026-11-12 14:45:00 UTC (15:45 CET)\n",
		// In the timeline table it stays in one cell.
		`Rolled back checkout-api v2.4 \| v2.3 is live<br>error rate falling on 10.42.7.15 (ETA 2026-11-12 14:45:00 UTC) |`,
		"| 762c2c03437732b3 | HighErrorRate | 10.42.7.15:8080 | resolved | S1 | 2026-11-12 14:03:27 UTC | 2026-11-12 14:36:57 UTC |",
		"| 32fa8eba93c82d9c | HighErrorRate | 10.42.9.41:8080 | resolved | S1 | 2026-11-12 14:05:12 UTC | 2026-11-12 14:27:42 UTC |",
		"A bad release of checkout-api (v2.4)",
		"## Root cause\n", "## Lessons learned\n", "## Action items\n", "<!-- responder:action-items: ", "_None yet: add them on the incident's page",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("draft lacks %q", want)
		}
	}
	if strings.Contains(md, "DRILL") || strings.Contains(md, "## Drill report") {
		t.Errorf("a real incident's draft mentions a drill")
	}
}

// Text that comes from an alert cannot break the draft's tables or its
// heading.
func TestPostmortemEscapesAlertText(t *testing.T) {
	e := newEnv(t)
	body := amPayload(t, "am_firing_v034.json", func(m *incident.AlertmanagerWebhook) {
		m.CommonAnnotations["summary"] = "checkout | payments\nerror rate"
		m.Alerts[0].Labels["instance"] = "10.42.7.15:8080|canary"
		m.Alerts[1].Labels["alertname"] = "HighErrorRate\r\nsecond line"
		m.TruncatedAlerts = 3
	})
	res := e.postAM(body)
	md := e.markdown(res[0].ID)
	checkMarkdownTables(t, md)
	for _, want := range []string{
		"# Post-mortem: " + res[0].ID + " — checkout | payments error rate\n",
		`| 762c2c03437732b3 | HighErrorRate | 10.42.7.15:8080\|canary | firing |`,
		`| 32fa8eba93c82d9c | HighErrorRate<br>second line | 10.42.9.41:8080 | firing |`,
		`S1 incident opened: checkout \| payments<br>error rate`,
		"The sender left out 3 more alerts of this group.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("draft lacks %q:\n%s", want, md)
		}
	}
}

// Local times follow the zone's rules on the day: CET in winter, CEST in
// summer, the right side of the spring change, and the local date when it
// is past midnight locally. Without a local zone only UTC is shown.
func TestPostmortemLocalTime(t *testing.T) {
	tests := []struct {
		name, zone string
		at         time.Time
		want       string // the Detection row's times
	}{
		{"winter", "Europe/Berlin", time.Date(2026, 1, 15, 3, 4, 5, 0, time.UTC), "| 2026-01-15 03:04:05 UTC | 04:04 CET |"},
		{"summer", "Europe/Berlin", time.Date(2026, 7, 15, 3, 4, 5, 0, time.UTC), "| 2026-07-15 03:04:05 UTC | 05:04 CEST |"},
		{"just after the spring change", "Europe/Berlin", time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC), "| 2026-03-29 01:30:00 UTC | 03:30 CEST |"},
		{"just before the spring change", "Europe/Berlin", time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC), "| 2026-03-29 00:30:00 UTC | 01:30 CET |"},
		{"past local midnight", "Europe/Berlin", time.Date(2026, 1, 15, 23, 30, 0, 0, time.UTC), "| 2026-01-15 23:30:00 UTC | 2026-01-16 00:30 CET |"},
		{"before local midnight", "America/New_York", time.Date(2026, 1, 16, 2, 0, 0, 0, time.UTC), "| 2026-01-16 02:00:00 UTC | 2026-01-15 21:00 EST |"},
		{"UTC zone: no local column", "UTC", time.Date(2026, 1, 15, 3, 4, 5, 0, time.UTC), "| Detection | 2026-01-15 03:04:05 UTC | 0s | 0s | oncall |"},
		{"no zone: no local column", "", time.Date(2026, 7, 15, 3, 4, 5, 0, time.UTC), "| Detection | 2026-07-15 03:04:05 UTC | 0s | 0s | oncall |"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envOption
			if tc.zone != "" {
				opts = append(opts, withPolicyZone(t, tc.zone))
			}
			e := newEnv(t, opts...)
			e.setClock(tc.at)
			var v view
			e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"Search is slow","severity":"S3"}`, http.StatusCreated).json(t, &v)
			md := e.markdown(v.ID)
			checkMarkdownTables(t, md)
			if !strings.Contains(md, tc.want) {
				t.Errorf("draft lacks %q:\n%s", tc.want, md)
			}
			local := strings.Contains(md, "Local time")
			if wantLocal := tc.zone != "" && tc.zone != "UTC"; local != wantLocal {
				t.Errorf("local time column shown %v, want %v", local, wantLocal)
			}
			// Steps that have not happened show "—", still open: not decided.
			for _, want := range []string{"| Acknowledgement | — |", "| Resolution | — |", "**Post-mortem required: not decided yet.**", "_No progress update was posted._", "_No alerts: the incident was declared by hand._"} {
				if !strings.Contains(md, want) {
					t.Errorf("draft lacks %q", want)
				}
			}
		})
	}
}

// The first resolved incident of a kind owes a post-mortem, the second of
// the same kind does not: in the JSON and in the draft.
func TestPostmortemRequiredOnce(t *testing.T) {
	e := newEnv(t)
	for i, want := range []bool{true, false} {
		var v view
		e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"Disk full on db-1","severity":"S2"}`, http.StatusCreated).json(t, &v)
		e.advance(10 * time.Minute)
		e.doWant(http.MethodPost, "/api/v1/incidents/"+v.ID+"/resolve", tokWrite, `{"by":"dev"}`, http.StatusOK).json(t, &v)
		if v.PostmortemRequired != want {
			t.Errorf("incident %d of the kind: resolve answered postmortem_required %v, want %v", i+1, v.PostmortemRequired, want)
		}
		if got := e.incident(v.ID).PostmortemRequired; got != want {
			t.Errorf("incident %d of the kind: GET postmortem_required %v, want %v", i+1, got, want)
		}
		md := e.markdown(v.ID)
		wantLine := "**Post-mortem required: yes.** Why: this is the first resolved incident of its kind (\"manual:Disk full on db-1\")"
		if !want {
			wantLine = "**Post-mortem required: no.** Why: an earlier incident of its kind (\"manual:Disk full on db-1\") was resolved before."
		}
		if !strings.Contains(md, wantLine) {
			t.Errorf("incident %d of the kind: draft lacks %q", i+1, wantLine)
		}
		e.advance(time.Hour)
	}
}

func TestPostmortemUnknownIncident(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"INC-999", "INC-0", "nonsense"} {
		r := e.getPostmortem(id)
		if r.status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404: %s", id, r.status, r.body)
			continue
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q, want the JSON error", id, ct)
		}
		if got, want := r.errorText(t), `unknown incident "`+id+`"`; got != want {
			t.Errorf("%s: error %q, want %q", id, got, want)
		}
	}
}

// The draft takes a token with the read scope.
func TestPostmortemAuth(t *testing.T) {
	e := newEnv(t)
	var v view
	e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"Search is slow","severity":"S3"}`, http.StatusCreated).json(t, &v)
	path := "/api/v1/incidents/" + v.ID + "/postmortem"
	for _, tc := range []struct {
		token string
		want  int
	}{
		{"", http.StatusUnauthorized},
		{tokIngest, http.StatusForbidden},
		{tokRead, http.StatusOK},
		{tokAll, http.StatusOK},
	} {
		if r := e.do(http.MethodGet, path, tc.token, nil); r.status != tc.want {
			t.Errorf("token %q: status %d, want %d", tc.token, r.status, tc.want)
		}
	}
}

// A drill's draft is marked [DRILL] and reports how long each step took.
func TestPostmortemDrillReport(t *testing.T) {
	e := newEnv(t, withPolicyZone(t, "Europe/Berlin"), withCheckoutDrill())
	e.setClock(time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC))
	var v view
	e.doWant(http.MethodPost, "/api/v1/drills", tokWrite, `{"scenario":"checkout-down","by":"maria"}`, http.StatusCreated).json(t, &v)
	base := "/api/v1/incidents/" + v.ID
	e.advance(4 * time.Minute)
	e.doWant(http.MethodPost, base+"/ack", tokWrite, `{"by":"dev"}`, http.StatusOK)

	// Half-way: the steps not yet taken are left out and shown as "—".
	md := e.markdown(v.ID)
	for _, want := range []string{"| Acknowledge | 4m0s |", "| Roles assigned | — |", "| First update | — |", "| Resolve | — |"} {
		if !strings.Contains(md, want) {
			t.Errorf("drill under way: draft lacks %q", want)
		}
	}

	e.advance(2*time.Minute + 30*time.Second)
	e.doWant(http.MethodPut, base+"/roles", tokWrite, `{"recovery_lead":"dev","comms_lead":"maria"}`, http.StatusOK)
	e.advance(3*time.Minute + 30*time.Second)
	e.doWant(http.MethodPost, base+"/updates", tokWrite, `{"text":"Failing over to eu-west-2.","by":"maria"}`, http.StatusCreated)
	e.advance(35 * time.Minute)
	e.doWant(http.MethodPost, base+"/resolve", tokWrite, `{"by":"dev","summary":"Failover took 35 minutes."}`, http.StatusOK).json(t, &v)
	if !v.Drill {
		t.Fatalf("drill: false in %+v", v.Incident)
	}

	// The report as the API answers it, after the resolution.
	var answer struct {
		Report json.RawMessage `json:"report"`
	}
	e.doWant(http.MethodGet, base, tokRead, "", http.StatusOK).json(t, &answer)
	want := `{"time_to_acknowledge":{"duration":"4m0s","seconds":240},"time_to_roles":{"duration":"6m30s","seconds":390},` +
		`"time_to_first_update":{"duration":"10m0s","seconds":600},"time_to_resolve":{"duration":"45m0s","seconds":2700}}`
	if got := string(answer.Report); got != want {
		t.Errorf("report %s, want %s", got, want)
	}

	md = e.markdown(v.ID)
	checkMarkdownTables(t, md)
	for _, want := range []string{
		"# [DRILL] Post-mortem: " + v.ID + " — Checkout returns 500s\n",
		`> **[DRILL]** This incident was a drill (scenario "checkout-down")`,
		"| Drill scenario | checkout-down |",
		"## Drill report\n",
		"| Acknowledge | 4m0s |", "| Roles assigned | 6m30s |", "| First update | 10m0s |", "| Resolve | 45m0s |",
		"| Detection | 2026-11-17 03:00:00 UTC | 04:00 CET | 0s | 0s | maria |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("drill draft lacks %q", want)
		}
	}
	goldenMarkdown(t, "postmortem_drill.golden.md", []byte(md))
}
