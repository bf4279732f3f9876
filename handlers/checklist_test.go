package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// runbooksYAML is the runbooks part of a configuration: the basic process
// (as the embedded default has it) and a recovery procedure attached by
// labels and by a drill scenario.
const runbooksYAML = `
drills:
  scenarios:
    database-failover: {title: Primary database lost, severity: S1, labels: {service: database}}
runbooks:
  - name: incident-process
    title: The incident process
    every_incident: true
    steps:
      - text: Determine the severity
      - {text: Inform the team, role: comms}
      - text: Assign the two roles
  - name: database-loss
    title: Loss of the database server
    matchers: ['service="database"']
    scenarios: [database-failover]
    steps:
      - {text: Put up the maintenance page, role: comms}
      - {text: Freeze merges to main, role: recovery}
      - {text: Restore from the nightly backup, role: recovery, link: "https://wiki.example/restore"}
`

// withRunbooks gives the env the runbooks of runbooksYAML, built by
// configs as the daemon builds them, and the drill scenario they name.
func withRunbooks(t *testing.T) envOption {
	t.Helper()
	cfg, err := configs.Parse([]byte(runbooksYAML))
	if err != nil {
		t.Fatalf("parse runbooks: %v", err)
	}
	pol, err := cfg.BuildPolicy()
	if err != nil {
		t.Fatalf("build runbooks: %v", err)
	}
	return func(s envSetup) {
		s.incDeps.Policy.Runbooks = pol.Runbooks
		s.inc.Scenarios = map[string]incident.Scenario{"database-failover": {Title: "Primary database lost", Severity: policy.S1,
			Labels: map[string]string{"service": "database"}}}
	}
}

// checklist is GET /api/v1/incidents/{id}/checklist.
type checklist struct {
	Incident string              `json:"incident"`
	Steps    []incident.StepView `json:"steps"`
	Next     *incident.StepView  `json:"next"`
	Runbooks []string            `json:"runbooks"`
}

func (e *testEnv) checklist(id string) checklist {
	e.t.Helper()
	r := e.do(http.MethodGet, "/api/v1/incidents/"+id+"/checklist", e.tok(tokRead), nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("checklist of %s: %d %s", id, r.status, r.body)
	}
	var c checklist
	r.json(e.t, &c)
	return c
}

func stepStates(steps []incident.StepView) string {
	var out []string
	for _, st := range steps {
		out = append(out, st.ID+"="+st.State)
	}
	return strings.Join(out, " ")
}

// Runbooks attach by labels (and to every incident), their steps are
// marked done, skipped or opened again by people, timed from the start,
// told in the timeline and the thread; bad marks change nothing.
func TestRunbookChecklist(t *testing.T) {
	e := newEnv(t, withRunbooks(t))
	r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite,
		[]byte(`{"title":"Orders database down","severity":"S1","labels":{"service":"database"},"declared_by":"ivan"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("declare: %d %s", r.status, r.body)
	}
	id := "INC-1"
	c := e.checklist(id)
	want := "incident-process/1=open incident-process/2=open incident-process/3=open database-loss/1=open database-loss/2=open database-loss/3=open"
	if got := stepStates(c.Steps); got != want {
		t.Fatalf("checklist %s, want %s", got, want)
	}
	if c.Next == nil || c.Next.ID != "incident-process/1" || c.Steps[5].Link != "https://wiki.example/restore" || c.Steps[3].Role != "comms" {
		t.Errorf("checklist details: next %+v, steps %+v", c.Next, c.Steps)
	}
	if got := kinds(e.incident(id).Timeline); !equalStrings(got, []string{"declared", "checklist", "checklist"}) {
		t.Errorf("timeline at open %v", got)
	}

	e.advance(5 * time.Minute)
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/checklist", `{"step":"incident-process/1","state":"done","by":"maria"}`, http.StatusOK)
	e.advance(2 * time.Minute)
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/checklist", `{"step":"database-loss/1","state":"skipped","reason":"no customers on it","by":"maria"}`, http.StatusOK)
	c = e.checklist(id)
	first, skipped := c.Steps[0], c.Steps[3]
	if first.State != store.StepDone || first.By != "maria" || first.SinceStart == nil || first.SinceStart.Seconds != 300 {
		t.Errorf("done step %+v (since start %+v)", first, first.SinceStart)
	}
	if skipped.State != store.StepSkipped || skipped.Reason != "no customers on it" || skipped.SinceStart.Seconds != 420 {
		t.Errorf("skipped step %+v", skipped)
	}
	if c.Next == nil || c.Next.ID != "incident-process/2" {
		t.Errorf("next %+v, want incident-process/2", c.Next)
	}
	tl := e.incident(id).Timeline
	if got := tl[len(tl)-2]; got.Kind != store.KindChecklist || got.By != "maria" ||
		got.Text != `step incident-process/1 "Determine the severity" done by maria, 5m after the start; next step: Inform the team` {
		t.Errorf("timeline entry %+v", got)
	}
	if got := e.events(); !equalStrings(got, []string{id + ":opened", id + ":note", id + ":note"}) {
		t.Errorf("messages %v, want the opening and a line in the thread per mark", got)
	}

	before := len(e.incident(id).Timeline)
	for _, tc := range []struct {
		body   string
		status int
		says   string
	}{
		{`{"step":"incident-process/2","state":"skipped","by":"maria"}`, http.StatusBadRequest, "reason: required"},
		{`{"step":"incident-process/2","state":"finished","by":"maria"}`, http.StatusBadRequest, `state: "finished": want done, skipped or open`},
		{`{"step":"incident-process/2","by":"maria"}`, http.StatusBadRequest, "state: required"},
		{`{"state":"done","by":"maria"}`, http.StatusBadRequest, "step: required"},
		{`{"step":"incident-process/9","state":"done","by":"maria"}`, http.StatusUnprocessableEntity,
			`"incident-process/9" is not a step of INC-1 (its steps are incident-process/1..3, database-loss/1..3)`},
		{`{"step":"incident-process/1","state":"done","by":"maria"}`, http.StatusConflict, "step incident-process/1 of INC-1 is already done"},
		{`{"step":"incident-process/1","state":"open","by":"maria"}`, http.StatusBadRequest, "reason: required"},
		{`{"step":"incident-process/1","state":"done","by":"maria","extra":1}`, http.StatusBadRequest, "extra"},
	} {
		r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/checklist", tokWrite, []byte(tc.body))
		if r.status != tc.status || !strings.Contains(r.errorText(t), tc.says) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.body, r.status, r.body, tc.status, tc.says)
		}
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/INC-9/checklist", tokWrite, []byte(`{"step":"incident-process/1","state":"done","by":"x"}`)); r.status != http.StatusNotFound {
		t.Errorf("unknown incident: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/checklist", tokRead, []byte(`{"step":"incident-process/2","state":"done"}`)); r.status != http.StatusForbidden {
		t.Errorf("a read token marks a step: %d", r.status)
	}
	if n := len(e.incident(id).Timeline); n != before {
		t.Errorf("refused marks wrote %d timeline entries", n-before)
	}

	// A mark made by mistake is opened again, with a reason.
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/checklist", `{"step":"incident-process/1","state":"open","reason":"ticked the wrong box","by":"maria"}`, http.StatusOK)
	if c := e.checklist(id); c.Steps[0].State != store.StepOpen || c.Steps[0].At != nil || c.Steps[0].SinceStart != nil || c.Next.ID != "incident-process/1" {
		t.Errorf("opened again: %+v", c.Steps[0])
	}
}

// A runbook is attached by hand, once; one not configured is refused with
// the configured names; a drill of a scenario gets its runbook.
func TestAttachRunbook(t *testing.T) {
	e := newEnv(t, withRunbooks(t))
	id := e.declareS("S2")
	if c := e.checklist(id); len(c.Steps) != 3 || !equalStrings(c.Runbooks, []string{"incident-process", "database-loss"}) {
		t.Fatalf("checklist of an incident without database labels: %+v", c)
	}
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/runbooks", `{"runbook":"database-loss","by":"maria"}`, http.StatusOK)
	if c := e.checklist(id); len(c.Steps) != 6 || c.Steps[3].ID != "database-loss/1" {
		t.Errorf("after attaching: %s", stepStates(c.Steps))
	}
	for _, tc := range []struct {
		body   string
		status int
		says   string
	}{
		{`{"runbook":"database-loss","by":"maria"}`, http.StatusConflict, "already has the runbook database-loss"},
		{`{"runbook":"kafka-loss","by":"maria"}`, http.StatusUnprocessableEntity, `runbook: "kafka-loss" is not configured (runbooks has incident-process, database-loss)`},
		{`{"by":"maria"}`, http.StatusBadRequest, "runbook: required"},
	} {
		r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/runbooks", tokWrite, []byte(tc.body))
		if r.status != tc.status || !strings.Contains(r.errorText(t), tc.says) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.body, r.status, r.body, tc.status, tc.says)
		}
	}

	r := e.do(http.MethodPost, "/api/v1/drills", tokWrite, []byte(`{"scenario":"database-failover","by":"maria"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("drill: %d %s", r.status, r.body)
	}
	var drill store.Incident
	r.json(t, &drill)
	if c := e.checklist(drill.ID); len(c.Steps) != 6 {
		t.Errorf("drill checklist: %s", stepStates(c.Steps))
	}
}

// A reminder to post an update names the next open step.
func TestReminderNamesTheNextStep(t *testing.T) {
	e := newEnv(t, withProcess(t, time.UTC, 0), withRunbooks(t))
	id := e.declareS("S1")
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/checklist", `{"step":"incident-process/1","state":"done","by":"maria"}`, http.StatusOK)
	e.advance(61 * time.Minute)
	e.remind()
	got := e.reminders(id)
	if len(got) != 1 || !strings.HasSuffix(got[0], "; next step of the checklist: Inform the team (incident-process/2)") {
		t.Errorf("reminders %q", got)
	}
}

// The page shows the checklist with tick boxes; its forms mark steps and
// attach runbooks, and a refused mark is shown beside the checklist.
func TestWebChecklist(t *testing.T) {
	e := newEnv(t, withRunbooks(t))
	id := e.declareS("S2")
	b := newBrowser(e)
	b.login(tokAll)
	p := b.get("/incidents/" + id)
	wantStatus(t, "incident page", p, http.StatusOK)
	wantBody(t, "incident page", p, `id="checklist-count">(0 of 3 marked)`, `id="step-incident-process-1" class="step step-open"`,
		`id="box-incident-process-1"`, `<option value="database-loss">database-loss</option>`)
	if strings.Contains(p.body, `<option value="incident-process">`) {
		t.Errorf("the page offers to attach a runbook already attached")
	}

	e.advance(90 * time.Second)
	wantStatus(t, "tick", b.post("/incidents/"+id+"/checklist", url.Values{"step": {"incident-process/1"}, "state": {"done"}, "by": {"ann"}}), http.StatusSeeOther)
	p = b.post("/incidents/"+id+"/checklist", url.Values{"step": {"incident-process/2"}, "state": {"skipped"}})
	wantStatus(t, "skip without a reason", p, http.StatusBadRequest)
	wantBody(t, "skip without a reason", p, `id="checklist-error"`, "reason: required")
	wantStatus(t, "attach", b.post("/incidents/"+id+"/runbooks", url.Values{"runbook": {"database-loss"}}), http.StatusSeeOther)

	p = b.get("/incidents/" + id)
	wantBody(t, "after the marks", p, `id="checklist-count">(1 of 6 marked)`, `id="step-incident-process-1" class="step step-done"`,
		"done by ann, 1m30s after the start", `id="step-database-loss-3" class="step step-open"`, `href="https://wiki.example/restore"`)
	if strings.Contains(p.body, `id="runbook-form"`) {
		t.Errorf("the attach form is shown with every runbook attached")
	}
}

// runDrill runs one drill of database-failover: acknowledged after ack,
// its first database-loss step done after step, resolved after resolve
// (each from the start). It returns the drill's id.
func (e *testEnv) runDrill(ack, step, resolve time.Duration) string {
	e.t.Helper()
	start := e.clock()
	r := e.do(http.MethodPost, "/api/v1/drills", tokWrite, []byte(`{"scenario":"database-failover","by":"maria"}`))
	if r.status != http.StatusCreated {
		e.t.Fatalf("drill: %d %s", r.status, r.body)
	}
	var inc store.Incident
	r.json(e.t, &inc)
	e.setClock(start.Add(ack))
	e.post(http.MethodPost, "/api/v1/incidents/"+inc.ID+"/ack", `{"by":"maria"}`, http.StatusOK)
	e.setClock(start.Add(step))
	e.post(http.MethodPost, "/api/v1/incidents/"+inc.ID+"/checklist", `{"step":"database-loss/1","state":"done","by":"maria"}`, http.StatusOK)
	e.post(http.MethodPost, "/api/v1/incidents/"+inc.ID+"/checklist", `{"step":"database-loss/2","state":"skipped","reason":"no merges today","by":"maria"}`, http.StatusOK)
	e.setClock(start.Add(resolve))
	e.post(http.MethodPost, "/api/v1/incidents/"+inc.ID+"/resolve", `{"by":"maria"}`, http.StatusOK)
	e.setClock(start.Add(resolve + time.Hour))
	return inc.ID
}

// A drill's report times its checklist steps and compares every time with
// the previous drill of the same scenario; the post-mortem draft shows it.
func TestDrillComparedWithThePrevious(t *testing.T) {
	e := newEnv(t, withRunbooks(t))
	first := e.runDrill(4*time.Minute, 10*time.Minute, 30*time.Minute)
	realID := e.declareS("S2") // a real incident between them is never compared
	second := e.runDrill(2*time.Minute, 15*time.Minute, 30*time.Minute)

	var got struct {
		Report incident.Report `json:"report"`
	}
	r := e.do(http.MethodGet, "/api/v1/incidents/"+second, tokRead, nil)
	r.json(t, &got)
	rep := got.Report
	if rep.ComparedWith != first || !equalStrings(rep.PreviousDrills, []string{first}) {
		t.Fatalf("compared with %q, previous %v; want %s", rep.ComparedWith, rep.PreviousDrills, first)
	}
	if b := rep.TimeToAcknowledge.Before; b == nil || b.Incident != first || b.Seconds != 240 || b.Change != -120 || b.Says != "2m0s faster than "+first {
		t.Errorf("acknowledge compared: %+v", b)
	}
	if b := rep.TimeToResolve.Before; b == nil || b.Change != 0 || b.Says != "as fast as "+first {
		t.Errorf("resolve compared: %+v", b)
	}
	if rep.TimeToRoles != nil {
		t.Errorf("roles were never assigned, yet timed: %+v", rep.TimeToRoles)
	}
	if len(rep.Steps) != 2 {
		t.Fatalf("steps timed %+v, want the done one and the skipped one", rep.Steps)
	}
	done, skipped := rep.Steps[0], rep.Steps[1]
	if done.ID != "database-loss/1" || done.Seconds != 900 || done.Before == nil || done.Before.Change != 300 || done.Before.Says != "5m0s slower than "+first {
		t.Errorf("done step %+v (before %+v)", done, done.Before)
	}
	if skipped.State != store.StepSkipped || skipped.Before != nil {
		t.Errorf("a skipped step is compared: %+v", skipped)
	}

	var plain struct {
		Report incident.Report `json:"report"`
	}
	e.do(http.MethodGet, "/api/v1/incidents/"+realID, tokRead, nil).json(t, &plain)
	if plain.Report.ComparedWith != "" || len(plain.Report.PreviousDrills) != 0 {
		t.Errorf("a real incident is compared with drills: %+v", plain.Report)
	}
	var firstReport struct {
		Report incident.Report `json:"report"`
	}
	e.do(http.MethodGet, "/api/v1/incidents/"+first, tokRead, nil).json(t, &firstReport)
	if firstReport.Report.ComparedWith != "" || firstReport.Report.TimeToAcknowledge.Before != nil {
		t.Errorf("the first drill of a scenario is compared: %+v", firstReport.Report)
	}

	third := e.runDrill(time.Minute, 5*time.Minute, 10*time.Minute)
	var thirdReport struct {
		Report incident.Report `json:"report"`
	}
	e.do(http.MethodGet, "/api/v1/incidents/"+third, tokRead, nil).json(t, &thirdReport)
	if !equalStrings(thirdReport.Report.PreviousDrills, []string{second, first}) || thirdReport.Report.ComparedWith != second {
		t.Errorf("third drill: compared with %q, previous %v", thirdReport.Report.ComparedWith, thirdReport.Report.PreviousDrills)
	}

	md := e.markdown(second)
	for _, want := range []string{
		"compared with the previous drill of this scenario, " + first,
		"| Step | Time taken | " + first + " | Change |",
		"| Acknowledge | 2m0s | 4m0s | 2m0s faster |",
		"| Step database-loss/1: Put up the maintenance page | 15m0s | 10m0s | 5m0s slower |",
		"| Step database-loss/2: Freeze merges to main (skipped) | 15m0s | — | — |",
		"## Checklist",
		"| database-loss/2 | Freeze merges to main | skipped | maria | 15m0s | no merges today |",
		"| incident-process/1 | Determine the severity | open | — | — | — |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the draft lacks %q:\n%s", want, md)
		}
	}
}
