package incident

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// Scenario is a drill scenario from the configuration.
type Scenario struct {
	Title       string
	Severity    policy.Severity
	Labels      map[string]string
	Description string
}

// DrillRequest starts a drill of a configured scenario; Severity, when
// given, replaces the scenario's.
type DrillRequest struct {
	Scenario string `json:"scenario"`
	Severity string `json:"severity"`
	By       string `json:"by"`
	schedule string // the schedule entry starting it
}

// Drill opens a drill incident from a named scenario. It runs the same
// process as a real incident, every message marked [DRILL], and pages
// nobody unless drills.page is set. replayed is true when idem's key had
// already opened it.
func (s *Service) Drill(ctx context.Context, req DrillRequest, actor string, idem Idempotency) (*View, bool, error) {
	if strings.TrimSpace(req.Scenario) == "" {
		return nil, false, invalid("scenario", "required (one of %s)", s.ScenarioNames())
	}
	sc, ok := s.cfg.Scenarios[req.Scenario]
	if !ok {
		return nil, false, unprocessable("scenario", "scenario: %q is not configured (drills.scenarios has %s)", req.Scenario, s.ScenarioNames())
	}
	sev := sc.Severity
	if req.Severity != "" {
		var err error
		if sev, err = policy.ParseSeverity(req.Severity); err != nil {
			return nil, false, invalid("severity", "%v", err)
		}
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, false, err
	}
	lbls := map[string]string{}
	for k, v := range sc.Labels {
		lbls[k] = v
	}
	view, replayed, err := s.openIncident(ctx, store.Incident{
		Scheduled:      req.schedule,
		Title:          sc.Title,
		Description:    sc.Description,
		Severity:       sev.String(),
		Source:         store.SourceDrill,
		Labels:         lbls,
		Drill:          true,
		Scenario:       req.Scenario,
		Kind:           "drill:" + req.Scenario,
		DeclaredBy:     by,
		CustomerImpact: s.policy.CustomerImpact(lbls),
	}, by, idem)
	if err == nil && !replayed {
		started := "api"
		if req.schedule != "" {
			started = "schedule"
		}
		s.metrics.drillsStarted.WithLabelValues(req.Scenario, started).Inc()
	}
	return view, replayed, err
}

// Scenarios are the names of the configured drill scenarios, sorted.
func (s *Service) Scenarios() []string {
	return slices.Sorted(maps.Keys(s.cfg.Scenarios))
}

// ScenarioNames lists the configured drill scenarios, for a message.
func (s *Service) ScenarioNames() string {
	if len(s.cfg.Scenarios) == 0 {
		return "none: configure drills.scenarios"
	}
	return strings.Join(s.Scenarios(), ", ")
}

// ScheduledDrill starts a drill of Scenario at each time of Cron, read in
// Location, declared by Organiser. A surprise drill is listed beforehand
// to its organiser only.
type ScheduledDrill struct {
	Name      string
	Scenario  string
	Cron      policy.Cron
	Location  *time.Location
	Organiser string
	Surprise  bool
}

// ScheduleCatchUp is how late a scheduled drill still starts when no
// replica was running (or checking) at its time; later it is skipped.
const ScheduleCatchUp = 15 * time.Minute

// StartScheduledDrills starts the scheduled drills whose time has come
// (within ScheduleCatchUp). Each time starts one drill however many passes
// or replicas see it due: the start is idempotent under a key naming the
// schedule entry and the time.
func (s *Service) StartScheduledDrills(ctx context.Context) error {
	now := s.now()
	var errs []error
	for _, sd := range s.cfg.Schedule {
		at := sd.Cron.Next(now.Add(-ScheduleCatchUp), sd.Location)
		if at.IsZero() || at.After(now) {
			continue
		}
		key := "\x00schedule\x00" + sd.Name + "\x00" + at.UTC().Format(time.RFC3339)
		view, replayed, err := s.Drill(ctx, DrillRequest{Scenario: sd.Scenario, By: sd.Organiser, schedule: sd.Name}, "",
			Idempotency{Key: key, Scope: "schedule"})
		if err != nil {
			errs = append(errs, fmt.Errorf("scheduled drill %s at %s: %w", sd.Name, at.UTC().Format(time.RFC3339), err))
			continue
		}
		if !replayed {
			s.log.Info().Str("incident", view.ID).Str("schedule", sd.Name).Time("due", at).Bool("surprise", sd.Surprise).Msg("scheduled drill started")
		}
	}
	return errors.Join(errs...)
}

// Upcoming is a scheduled drill's next start, as a person sees it.
type Upcoming struct {
	Name      string    `json:"name"`
	Scenario  string    `json:"scenario"`
	Cron      string    `json:"cron"`
	TimeZone  string    `json:"time_zone"`
	Next      time.Time `json:"next"` // UTC; zero when it never runs again
	NextLocal string    `json:"next_local"`
	Organiser string    `json:"organiser"`
	Surprise  bool      `json:"surprise"`
}

// UpcomingDrills lists the scheduled drills with their next start, soonest
// first, as viewer may see them: a surprise drill is listed to its
// organiser alone.
func (s *Service) UpcomingDrills(viewer string) []Upcoming {
	now := s.now()
	out := []Upcoming{}
	for _, sd := range s.cfg.Schedule {
		if sd.Surprise && viewer != sd.Organiser {
			continue
		}
		next := sd.Cron.Next(now, sd.Location)
		u := Upcoming{Name: sd.Name, Scenario: sd.Scenario, Cron: sd.Cron.String(), TimeZone: sd.Location.String(),
			Next: next.UTC(), Organiser: sd.Organiser, Surprise: sd.Surprise}
		if !next.IsZero() {
			u.NextLocal = next.In(sd.Location).Format("2006-01-02 15:04 MST")
		}
		out = append(out, u)
	}
	slices.SortStableFunc(out, func(a, b Upcoming) int {
		switch { // one that never runs again goes last
		case a.Next.IsZero() && !b.Next.IsZero():
			return 1
		case !a.Next.IsZero() && b.Next.IsZero():
			return -1
		}
		return a.Next.Compare(b.Next)
	})
	return out
}
