package incident

import (
	"context"
	"maps"
	"slices"
	"strings"

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
	return s.openIncident(ctx, store.Incident{
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
