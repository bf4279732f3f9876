package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/responder-sre/responder/handlers/incident"
)

// actionList is the answer of a list of action items.
type actionList struct {
	ActionItems []incident.ActionItemView `json:"action_items"`
}

// incidentActionItems serves GET /api/v1/incidents/{id}/action-items.
func (s *Server) incidentActionItems(c echo.Context) error {
	view, err := s.incidents.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, actionList{ActionItems: view.ActionItems})
}

// listActionItems serves GET /api/v1/action-items?state=&owner=&incident=&overdue=&limit=.
func (s *Server) listActionItems(c echo.Context) error {
	items, err := s.incidents.ActionItems(c.Request().Context(), incident.ActionQuery{State: c.QueryParam("state"),
		Owner: c.QueryParam("owner"), Incident: c.QueryParam("incident"), Overdue: c.QueryParam("overdue"), Limit: c.QueryParam("limit")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, actionList{ActionItems: items})
}

// getActionItem serves GET /api/v1/action-items/{id}.
func (s *Server) getActionItem(c echo.Context) error {
	a, err := s.incidents.ActionItem(c.Request().Context(), c.Param("aid"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}
