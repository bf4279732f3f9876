package incident

import (
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
}

// StepDuration is one step's time, rounded to the second: as Go duration
// text for people ("12m30s") and as whole seconds for programs.
type StepDuration struct {
	Duration string `json:"duration"`
	Seconds  int64  `json:"seconds"`
}

// buildReport measures inc's process steps from its creation. It returns
// nil only for a nil incident; an incident where nothing has happened yet
// gets an empty report.
func buildReport(inc *store.Incident) *Report {
	if inc == nil {
		return nil
	}
	return &Report{
		TimeToAcknowledge: since(inc.CreatedAt, inc.AcknowledgedAt),
		TimeToRoles:       since(inc.CreatedAt, inc.RolesAssignedAt),
		TimeToFirstUpdate: since(inc.CreatedAt, inc.FirstUpdateAt),
		TimeToResolve:     since(inc.CreatedAt, inc.ResolvedAt),
	}
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
