package handlers

import (
	"net/http"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

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

type drillRequest struct {
	Scenario string `json:"scenario"`
	Severity string `json:"severity"`
	By       string `json:"by"`
}

// startDrill opens a drill incident from a named scenario. It runs the same
// process as a real incident, every message marked [DRILL], and pages
// nobody unless drills.page is set.
func (s *Server) startDrill(c echo.Context) error {
	var req drillRequest
	if err := s.bindStrict(c, &req, false); err != nil {
		return err
	}
	view, replayed, err := s.drillFrom(c, req)
	if err != nil {
		return err
	}
	return s.answerOpened(c, view, replayed)
}

// drillFrom validates a drill request and opens its incident: the one path
// of the API and the web form.
func (s *Server) drillFrom(c echo.Context, req drillRequest) (*incidentView, bool, error) {
	if strings.TrimSpace(req.Scenario) == "" {
		return nil, false, badRequest("scenario: required (one of %s)", s.scenarioNames())
	}
	sc, ok := s.cfg.Scenarios[req.Scenario]
	if !ok {
		return nil, false, errorf(http.StatusUnprocessableEntity, "scenario: %q is not configured (drills.scenarios has %s)", req.Scenario, s.scenarioNames())
	}
	sev := sc.Severity
	if req.Severity != "" {
		var err error
		if sev, err = policy.ParseSeverity(req.Severity); err != nil {
			return nil, false, badRequest("severity: %v", err)
		}
	}
	by, err := actor(c, "by", req.By)
	if err != nil {
		return nil, false, err
	}
	lbls := map[string]string{}
	for k, v := range sc.Labels {
		lbls[k] = v
	}
	return s.openIncident(c, store.Incident{
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
	}, by)
}

func (s *Server) scenarioNames() string {
	if len(s.cfg.Scenarios) == 0 {
		return "none: configure drills.scenarios"
	}
	names := make([]string, 0, len(s.cfg.Scenarios))
	for n := range s.cfg.Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
