package incident

import (
	"fmt"
	"time"

	"github.com/responder-sre/responder/store"
)

// Report is how long each step of the incident process took,
// measured from the moment Responder opened the incident (its created_at,
// the detection). A step that has not happened is left out of the JSON.
// A drill is judged by it; real incidents carry it too.
//
//	"report": {
//	  "time_to_acknowledge":  {"duration": "4m0s",  "seconds": 240},
//	  "time_to_roles":        {"duration": "6m30s", "seconds": 390},
//	  "time_to_first_update": {"duration": "10m0s", "seconds": 600},
//	  "time_to_resolve":      {"duration": "45m0s", "seconds": 2700}
//	}
type Report struct {
	TimeToAcknowledge *StepDuration `json:"time_to_acknowledge,omitempty"`
	TimeToRoles       *StepDuration `json:"time_to_roles,omitempty"`
	TimeToFirstUpdate *StepDuration `json:"time_to_first_update,omitempty"`
	TimeToResolve     *StepDuration `json:"time_to_resolve,omitempty"`
	// Steps times each checklist step marked done or skipped.
	Steps []StepTime `json:"steps,omitempty"`
	// A drill is compared with the drill of the same scenario resolved
	// last before it (ComparedWith): each time above, done in both, says
	// how it changed. PreviousDrills lists the earlier drills of the
	// scenario, newest first (at most maxPreviousDrills).
	ComparedWith   string   `json:"compared_with,omitempty"`
	PreviousDrills []string `json:"previous_drills,omitempty"`
}

// maxPreviousDrills bounds the earlier drills a report lists.
const maxPreviousDrills = 10

// StepTime is one checklist step's time from the start.
type StepTime struct {
	ID      string `json:"step"`
	Runbook string `json:"runbook"`
	Text    string `json:"text"`
	State   string `json:"state"`
	StepDuration
}

// StepDuration is one step's time, rounded to the second: as Go duration
// text for people ("12m30s") and as whole seconds for programs.
type StepDuration struct {
	Duration string `json:"duration"`
	Seconds  int64  `json:"seconds"`
	// Before is the same step in the drill compared with.
	Before *Comparison `json:"before,omitempty"`
}

// Comparison is a step's time in an earlier drill and how this drill
// differs: Change is this drill's seconds minus that one's (negative:
// faster), and Says puts it in words ("2m0s faster").
type Comparison struct {
	Incident string `json:"incident"`
	Seconds  int64  `json:"seconds"`
	Change   int64  `json:"change_seconds"`
	Says     string `json:"says"`
}

// compare sets d.Before from the same step of the earlier drill prev.
func (d *StepDuration) compare(prevID string, prev *StepDuration) {
	if d == nil || prev == nil {
		return
	}
	c := &Comparison{Incident: prevID, Seconds: prev.Seconds, Change: d.Seconds - prev.Seconds}
	delta := time.Duration(c.Change) * time.Second
	switch {
	case c.Change < 0:
		c.Says = fmt.Sprintf("%s faster than %s", -delta, prevID)
	case c.Change > 0:
		c.Says = fmt.Sprintf("%s slower than %s", delta, prevID)
	default:
		c.Says = "as fast as " + prevID
	}
	d.Before = c
}

// buildReport measures inc's process steps from its creation. It returns
// nil only for a nil incident; an incident where nothing has happened yet
// gets an empty report.
func buildReport(inc *store.Incident, steps []store.Step) *Report {
	if inc == nil {
		return nil
	}
	r := &Report{
		TimeToAcknowledge: since(inc.CreatedAt, inc.AcknowledgedAt),
		TimeToRoles:       since(inc.CreatedAt, inc.RolesAssignedAt),
		TimeToFirstUpdate: since(inc.CreatedAt, inc.FirstUpdateAt),
		TimeToResolve:     since(inc.CreatedAt, inc.ResolvedAt),
	}
	for _, st := range steps {
		if d := since(inc.CreatedAt, st.At); d != nil && st.State != store.StepOpen {
			r.Steps = append(r.Steps, StepTime{ID: st.ID, Runbook: st.Runbook, Text: st.Text, State: st.State, StepDuration: *d})
		}
	}
	return r
}

// reportOf is inc's report, steps its checklist; for a drill, compared
// with the drill of the same scenario resolved last before it.
func reportOf(tx store.Tx, inc *store.Incident, steps []store.Step) (*Report, error) {
	r := buildReport(inc, steps)
	if r == nil || !inc.Drill || inc.Kind == "" {
		return r, nil
	}
	prev, err := tx.ResolvedBefore(inc.Kind, inc.ID, maxPreviousDrills)
	if err != nil || len(prev) == 0 {
		return r, err
	}
	last, err := tx.Incident(prev[0])
	if err != nil {
		return nil, fmt.Errorf("the drill before %s: %w", inc.ID, err)
	}
	lastSteps, err := tx.Checklist(last.ID)
	if err != nil {
		return nil, err
	}
	r.PreviousDrills, r.ComparedWith = prev, last.ID
	before := buildReport(last, lastSteps)
	r.TimeToAcknowledge.compare(last.ID, before.TimeToAcknowledge)
	r.TimeToRoles.compare(last.ID, before.TimeToRoles)
	r.TimeToFirstUpdate.compare(last.ID, before.TimeToFirstUpdate)
	r.TimeToResolve.compare(last.ID, before.TimeToResolve)
	// A step is the same when it is the same text of the same runbook,
	// wherever the runbook has it now; only steps done in both compare.
	done := map[[2]string]*StepDuration{}
	for _, st := range lastSteps {
		if st.State == store.StepDone {
			done[[2]string{st.Runbook, st.Text}] = since(last.CreatedAt, st.At)
		}
	}
	for i := range r.Steps {
		st := &r.Steps[i]
		if st.State == store.StepDone {
			st.compare(last.ID, done[[2]string{st.Runbook, st.Text}])
		}
	}
	return r, nil
}

// since is the time from start to at, or nil when at has not happened.
// A step recorded before start (clocks moved) shows as negative rather
// than being hidden.
func since(start time.Time, at *time.Time) *StepDuration {
	if at == nil || at.IsZero() {
		return nil
	}
	d := at.Sub(start).Round(time.Second)
	return &StepDuration{Duration: d.String(), Seconds: int64(d / time.Second)}
}
