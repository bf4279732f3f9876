package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo-contrib/echoprometheus"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
)

// NewBaseline serves the Alertmanager ingest route as the daemon does
// (same echo middleware, auth, body limit, content-type check and decoder)
// but stores nothing: every body that decodes is answered 202. It is the
// ceiling the load tool measures the durable daemon against, so that the
// cost of the incident logic and the fsync is a ratio on the same machine.
// It also answers /healthz and /readyz.
func NewBaseline(cfg Config, log zerolog.Logger) http.Handler {
	s := New(cfg, Deps{Log: log, Incidents: incident.New(incident.Config{}, incident.Deps{Store: discardStore{}, Log: log})})
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(s.recoverPanics, echoprometheus.NewMiddlewareWithConfig(echoprometheus.MiddlewareConfig{
		Namespace:                 "responder",
		Subsystem:                 "http",
		Registerer:                prometheus.NewRegistry(),
		DoNotUseRequestPathFor404: true,
	}), s.logRequests)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.POST("/api/v1/alerts/alertmanager", s.postBaseline, s.auth(ScopeIngest))
	return e
}

func (s *Server) postBaseline(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	if _, err := decodeAlertmanager(body); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, ingestResponse{Incidents: []ingestResult{}})
}

// errDiscard is what the baseline's store answers to anything but
// readiness: the baseline has no route that reaches it.
var errDiscard = errors.New("the baseline stores nothing")

// discardStore is the baseline's store: ready, empty, and refusing every
// transaction.
type discardStore struct{}

func (discardStore) Update(context.Context, func(store.Tx) error) error { return errDiscard }
func (discardStore) View(context.Context, func(store.Tx) error) error   { return errDiscard }
func (discardStore) QueueDepth() int                                    { return 0 }
func (discardStore) Ready() error                                       { return nil }
