package incident

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// Runbook checklists: the ordered steps of the runbooks attached to an
// incident (the basic process, a recovery procedure), each marked done or
// skipped by a person, timed from the incident's start.

// StepView is a checklist step as people see it: the stored step and,
// once marked, the time from the incident's start to the mark.
type StepView struct {
	store.Step
	SinceStart *StepDuration `json:"since_start,omitempty"`
}

// checklistOf is a checklist with each marked step timed from start.
func checklistOf(start time.Time, steps []store.Step) []StepView {
	out := make([]StepView, 0, len(steps))
	for _, st := range steps {
		v := StepView{Step: st}
		if st.State != store.StepOpen {
			v.SinceStart = since(start, st.At)
		}
		out = append(out, v)
	}
	return out
}

// nextStep is the first open step of the checklist, or nil when every step
// is marked.
func nextStep(steps []store.Step) *store.Step {
	for i := range steps {
		if steps[i].State == store.StepOpen {
			return &steps[i]
		}
	}
	return nil
}

// checklist is the incident's checklist, read once per change; what the
// change does to it is written when the change is saved.
func (ch *change) checklist() ([]store.Step, error) {
	if !ch.stepsRead {
		steps, err := ch.tx.Checklist(ch.inc.ID)
		if err != nil {
			return nil, err
		}
		ch.steps, ch.stepsRead = steps, true
	}
	return ch.steps, nil
}

// attachRunbooks attaches the runbooks the policy gives a new incident, by
// its labels and drill scenario.
func (ch *change) attachRunbooks() error {
	if ch.s.policy == nil {
		return nil
	}
	for _, r := range ch.s.policy.RunbooksFor(ch.inc.Labels, ch.inc.Scenario) {
		if err := ch.record(store.KindChecklist, attachedText(r), "responder"); err != nil {
			return err
		}
		if err := ch.attach(r); err != nil {
			return err
		}
	}
	return nil
}

func attachedText(r policy.Runbook) string {
	return fmt.Sprintf("runbook %s attached (%q, %d steps)", r.Name, r.Title, len(r.Steps))
}

// attach copies r's steps into the checklist, all open.
func (ch *change) attach(r policy.Runbook) error {
	if _, err := ch.checklist(); err != nil {
		return err
	}
	ch.stepsChanged = true
	for i, st := range r.Steps {
		ch.steps = append(ch.steps, store.Step{
			ID:      r.Name + "/" + strconv.Itoa(i+1),
			Runbook: r.Name,
			Text:    st.Text,
			Role:    st.Role,
			Link:    st.Link,
			State:   store.StepOpen,
		})
	}
	return nil
}

// hasRunbook reports whether the runbook name is in the checklist.
func hasRunbook(steps []store.Step, name string) bool {
	for _, st := range steps {
		if st.Runbook == name {
			return true
		}
	}
	return false
}

// RunbookRequest attaches a configured runbook to an incident by hand.
type RunbookRequest struct {
	Runbook string `json:"runbook"`
	By      string `json:"by"`
}

// AttachRunbook attaches the configured runbook req.Runbook to the
// incident id: its steps join the checklist, open, and the thread is told.
func (s *Service) AttachRunbook(ctx context.Context, id string, req RunbookRequest, actor string) (*View, error) {
	name := strings.TrimSpace(req.Runbook)
	if name == "" {
		return nil, invalid("runbook", "required (one of %s)", s.RunbookNames())
	}
	r, ok := s.runbook(name)
	if !ok {
		return nil, unprocessable("runbook", "runbook: %q is not configured (runbooks has %s)", integrations.Shorten(name, 64), s.RunbookNames())
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	return s.changeIncident(ctx, id, func(ch *change) error {
		steps, err := ch.checklist()
		if err != nil {
			return err
		}
		if hasRunbook(steps, r.Name) {
			return conflict("%s already has the runbook %s", ch.inc.ID, r.Name)
		}
		if err := ch.attach(r); err != nil {
			return err
		}
		text := attachedText(r) + " by " + by
		if next := nextStep(ch.steps); next != nil {
			text += "; next step: " + next.Text
		}
		return ch.announce(integrations.EventNote, store.KindChecklist, text, by)
	})
}

func (s *Service) runbook(name string) (policy.Runbook, bool) {
	if s.policy == nil {
		return policy.Runbook{}, false
	}
	return s.policy.Runbook(name)
}

// Runbooks are the names of the configured runbooks, in their order.
func (s *Service) Runbooks() []string {
	if s.policy == nil {
		return nil
	}
	names := make([]string, 0, len(s.policy.Runbooks))
	for _, r := range s.policy.Runbooks {
		names = append(names, r.Name)
	}
	return names
}

// RunbookNames lists the configured runbooks, for a message.
func (s *Service) RunbookNames() string {
	names := s.Runbooks()
	if len(names) == 0 {
		return "none: configure runbooks"
	}
	return strings.Join(names, ", ")
}

// StepRequest marks a checklist step: done, skipped (a reason is
// required), or open again (a reason is required: the mark was a mistake).
type StepRequest struct {
	Step   string `json:"step"` // RUNBOOK/N
	State  string `json:"state"`
	Reason string `json:"reason"`
	By     string `json:"by"`
}

// MarkStep marks the step req.Step of the incident id's checklist, saying
// who did and when in the timeline and the thread.
func (s *Service) MarkStep(ctx context.Context, id string, req StepRequest, actor string) (*View, error) {
	stepID := strings.TrimSpace(req.Step)
	if stepID == "" {
		return nil, invalid("step", "required: a step id such as incident-process/1 (GET the incident's checklist for them)")
	}
	switch req.State {
	case store.StepDone, store.StepSkipped, store.StepOpen:
	case "":
		return nil, invalid("state", "required: done, skipped or open")
	default:
		return nil, invalid("state", "%q: want done, skipped or open", integrations.Shorten(req.State, 32))
	}
	if err := CheckText("reason", req.Reason, MaxText, req.State != store.StepDone); err != nil {
		return nil, err
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	reason := strings.TrimSpace(req.Reason)
	return s.changeIncident(ctx, id, func(ch *change) error {
		steps, err := ch.checklist()
		if err != nil {
			return err
		}
		st := ch.step(stepID)
		switch {
		case st == nil && len(steps) == 0:
			return unprocessable("step", "step: %s has no checklist: attach a runbook first (%s)", ch.inc.ID, s.RunbookNames())
		case st == nil:
			return unprocessable("step", "step: %q is not a step of %s (its steps are %s)", integrations.Shorten(stepID, 64), ch.inc.ID, stepIDs(steps))
		case st.State == req.State:
			return conflict("step %s of %s is already %s", st.ID, ch.inc.ID, st.State)
		}
		return ch.mark(st, req.State, reason, by)
	})
}

// step is the step with this id of the checklist read, or nil.
func (ch *change) step(id string) *store.Step {
	for i := range ch.steps {
		if ch.steps[i].ID == id {
			return &ch.steps[i]
		}
	}
	return nil
}

// stepIDs names the first and last step of each runbook, for a message.
func stepIDs(steps []store.Step) string {
	var parts []string
	for i, st := range steps {
		if i+1 == len(steps) || steps[i+1].Runbook != st.Runbook {
			parts = append(parts, st.Runbook+"/1.."+strings.TrimPrefix(st.ID, st.Runbook+"/"))
		}
	}
	return strings.Join(parts, ", ")
}

// mark sets a step's state and tells the timeline and the thread.
func (ch *change) mark(st *store.Step, state, reason, by string) error {
	ch.stepsChanged = true
	st.State, st.By, st.Reason = state, by, reason
	at := ch.now
	st.At = &at
	var text string
	switch state {
	case store.StepDone:
		text = fmt.Sprintf("step %s %q done by %s, %s after the start", st.ID, st.Text, by, shortDuration(at.Sub(ch.inc.CreatedAt).Round(time.Second)))
	case store.StepSkipped:
		text = fmt.Sprintf("step %s %q skipped by %s: %s", st.ID, st.Text, by, reason)
	default:
		st.At, st.By = nil, ""
		text = fmt.Sprintf("step %s %q open again (by %s): %s", st.ID, st.Text, by, reason)
	}
	ch.marked = append(ch.marked, *st)
	if next := nextStep(ch.steps); next != nil {
		text += "; next step: " + next.Text
	} else {
		text += "; every step of the checklist is marked"
	}
	if err := ch.announce(integrations.EventNote, store.KindChecklist, text, by); err != nil {
		return err
	}
	// The root shows the next step (and offers it as a button).
	ch.events[len(ch.events)-1].stateChanged = true
	return nil
}
