// Package handlers is Responder's HTTP front door, served with echo:
// routes, auth and rate limits, decoding webhooks and requests, JSON
// answers, the web pages and their sessions, health and metrics. The
// incident rules are the incident service's (handlers/incident); this
// package turns its errors into HTTP statuses in one place (statusOf).
package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo-contrib/echoprometheus"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations"
)

// Scopes a token can carry.
const (
	ScopeIngest = "ingest"
	ScopeRead   = "read"
	ScopeWrite  = "write"
	// ScopeAdmin reads the whole store (GET /api/v1/admin/backup): give it
	// to the backup job alone.
	ScopeAdmin = "admin"
)

// Token is one accepted bearer token. RatePerSecond > 0 limits the
// requests made with it to a token bucket of Burst requests.
type Token struct {
	Name          string
	Value         string
	Scopes        []string
	RatePerSecond float64
	Burst         int
}

// Config is what the handlers take from the configuration.
type Config struct {
	BodyLimit int64
	// MaxIngestInFlight bounds the webhook requests handled at once; more
	// are refused with 503 before their body is read. Zero: no bound.
	MaxIngestInFlight int
	RetryAfter        time.Duration
	Tokens            []Token
	// AllowedHosts are the names and addresses besides loopback ones a
	// request's Host may carry (see hostAllowed); AnyAddress accepts any
	// IP address too, for a daemon listening on every interface.
	AllowedHosts []string
	AnyAddress   bool
	// MetricsRequiresToken puts /metrics behind a token with the read
	// scope (when tokens are configured).
	MetricsRequiresToken bool
	// MaxAlerts is the most alerts of one Alertmanager webhook that are
	// stored; the rest count as truncated. 0 keeps them all.
	MaxAlerts int
	// Secrets are the configured secret values (tokens, vendor keys,
	// passwords): no API answer ever shows one.
	Secrets []string
	// PagerDutySecrets verify PagerDuty's v3 webhooks (their
	// X-PagerDuty-Signature); none: those webhooks are refused.
	PagerDutySecrets []string
	// SessionKey signs the web sessions' cookies; empty: a key drawn at
	// random when the server starts (a restart logs everyone out). Replicas
	// share one (Sessions.SessionKey).
	SessionKey []byte
}

// Deps are the parts the server is built from.
type Deps struct {
	// Incidents is the incident service every route and page calls.
	Incidents *incident.Service
	// Outbox is the dispatcher, asked whether it runs (readiness); nil
	// when nothing delivers notifications.
	Outbox   Outbox
	Log      zerolog.Logger
	Now      func() time.Time
	Registry *prometheus.Registry
	// Sessions keeps the web sessions' signing key and logouts where every
	// replica sees them (store/postgres); nil: in this process only.
	Sessions Sessions
	// Slack serves Slack's request URLs (interactivity in http mode:
	// .../slack/commands and .../slack/interactivity), verifying Slack's
	// signature itself; nil when Slack is not a front door over HTTP.
	Slack http.Handler
	// Backup copies the store while it serves (store/bolt); nil when the
	// store is backed up by its own tools (PostgreSQL).
	Backup Backup
}

// Backup is a store that writes a consistent copy of itself to w while
// writes go on; sized learns the copy's size before its first byte.
type Backup interface {
	Backup(w io.Writer, sized func(int64)) (int64, error)
}

// Sessions is what web sessions need to work across replicas behind a load
// balancer: one key that signs every replica's cookies, and the sessions
// logged out, which every replica refuses.
type Sessions interface {
	// SessionKey is the shared signing key, made once.
	SessionKey(ctx context.Context) ([]byte, error)
	// RevokeSession records that session id logged out; it is refused
	// until it would have expired.
	RevokeSession(ctx context.Context, id string, until time.Time) error
	// SessionRevoked reports whether session id logged out.
	SessionRevoked(ctx context.Context, id string) (bool, error)
}

// Outbox is what the handlers need from the dispatcher.
type Outbox interface {
	Running() bool
}

// Server serves the HTTP API.
type Server struct {
	cfg       Config
	incidents *incident.Service
	outbox    Outbox
	log       zerolog.Logger
	now       func() time.Time
	tokens    []hashedToken
	metrics   *metrics
	echo      *echo.Echo
	// sessionKey signs the web pages' session cookies; pages are their
	// templates.
	sessionKey []byte
	revoked    revocations  // sessions logged out, in this process
	sessions   Sessions     // or where every replica sees them
	slack      http.Handler // Slack's request URLs; nil when off
	backup     Backup       // nil: the store has its own backups

	pages pages
	// redactor removes secrets from what people are shown.
	redactor *integrations.Redactor
}

type hashedToken struct {
	name    string
	sum     [sha256.Size]byte
	scopes  map[string]bool
	limiter *tokenLimiter // nil: unlimited
}

// New builds the server and its routes.
func New(cfg Config, d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:       cfg,
		incidents: d.Incidents,
		outbox:    d.Outbox,
		log:       d.Log,
		now:       func() time.Time { return d.Now().UTC() },

		sessionKey: cfg.SessionKey,
		sessions:   d.Sessions,
		slack:      d.Slack,
		backup:     d.Backup,
		redactor:   integrations.NewRedactor(cfg.Secrets),
	}
	s.metrics = newMetrics(d.Registry, s.ready)
	if len(s.sessionKey) == 0 {
		s.sessionKey = sessionKey()
	}
	pg, err := newPages()
	if err != nil {
		// The templates are embedded in the binary: every test catches this.
		panic(err)
	}
	s.pages = pg
	for _, t := range cfg.Tokens {
		ht := hashedToken{name: t.Name, sum: sha256.Sum256([]byte(t.Value)), scopes: map[string]bool{},
			limiter: newTokenLimiter(t.RatePerSecond, t.Burst)}
		for _, sc := range t.Scopes {
			ht.scopes[sc] = true
		}
		s.tokens = append(s.tokens, ht)
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.JSONSerializer = redactingJSON{r: s.redactor}
	// Log the peer's address, not what X-Forwarded-For claims.
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(s.recoverPanics, echoprometheus.NewMiddlewareWithConfig(echoprometheus.MiddlewareConfig{
		Namespace:  "responder",
		Subsystem:  "http",
		Registerer: d.Registry,
		// Unknown paths share one label, so that scans cannot grow the series.
		DoNotUseRequestPathFor404: true,
	}), s.logRequests, s.checkHost, noSniff, s.refuseQueryCredentials, s.checkOrigin)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	// A collector that cannot read the store leaves its own metrics out,
	// not the whole scrape: responder_ready must still say 0.
	metrics := echo.WrapHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	if cfg.MetricsRequiresToken {
		e.GET("/metrics", metrics, s.auth(ScopeRead))
	} else {
		e.GET("/metrics", metrics)
	}

	api := e.Group("/api/v1")
	admit := s.admit() // one pool of slots for both webhooks
	api.POST("/alerts/alertmanager", s.postAlertmanager, s.auth(ScopeIngest), admit)
	api.POST("/alerts/opsgenie", s.postOpsGenie, s.auth(ScopeIngest), admit)
	api.POST("/alerts/jsm", s.postJSM, s.auth(ScopeIngest), admit)
	api.POST("/heartbeats/:name", s.postHeartbeat, s.auth(ScopeIngest), admit)
	// PagerDuty signs its webhooks and sends no bearer token: the
	// signature is the authentication.
	api.POST("/alerts/pagerduty", s.postPagerDuty, admit)
	if s.slack != nil {
		// Signed by Slack with the app's signing secret, checked on the
		// raw body before anything is read: no bearer token.
		api.POST("/slack/commands", echo.WrapHandler(s.slack), admit)
		api.POST("/slack/interactivity", echo.WrapHandler(s.slack), admit)
	}
	api.POST("/incidents", s.declare, s.auth(ScopeWrite))
	api.GET("/incidents", s.list, s.auth(ScopeRead))
	api.GET("/incidents/:id", s.get, s.auth(ScopeRead))
	api.POST("/incidents/:id/ack", jsonChange(s, true, http.StatusOK, (*incident.Service).Acknowledge), s.auth(ScopeWrite))
	api.POST("/incidents/:id/resolve", jsonChange(s, true, http.StatusOK, (*incident.Service).Resolve), s.auth(ScopeWrite))
	api.PUT("/incidents/:id/roles", jsonChange(s, false, http.StatusOK, (*incident.Service).SetRoles), s.auth(ScopeWrite))
	api.POST("/incidents/:id/updates", jsonChange(s, false, http.StatusCreated, (*incident.Service).PostUpdate), s.auth(ScopeWrite))
	api.POST("/incidents/:id/notes", jsonChange(s, false, http.StatusCreated, (*incident.Service).AddNote), s.auth(ScopeWrite))
	api.PUT("/incidents/:id/severity", jsonChange(s, false, http.StatusOK, (*incident.Service).SetSeverity), s.auth(ScopeWrite))
	api.PUT("/incidents/:id/customer_impact", jsonChange(s, false, http.StatusOK, (*incident.Service).SetCustomerImpact), s.auth(ScopeWrite))
	api.POST("/incidents/:id/reopen", jsonChange(s, false, http.StatusOK, (*incident.Service).Reopen), s.auth(ScopeWrite))
	api.POST("/incidents/:id/page", jsonChange(s, false, http.StatusOK, (*incident.Service).Page), s.auth(ScopeWrite))
	api.GET("/incidents/:id/checklist", s.checklist, s.auth(ScopeRead))
	api.POST("/incidents/:id/checklist", jsonChange(s, false, http.StatusOK, (*incident.Service).MarkStep), s.auth(ScopeWrite))
	api.POST("/incidents/:id/runbooks", jsonChange(s, false, http.StatusOK, (*incident.Service).AttachRunbook), s.auth(ScopeWrite))
	api.POST("/drills", s.startDrill, s.auth(ScopeWrite))
	api.GET("/drills/schedule", s.drillSchedule, s.auth(ScopeRead))
	api.POST("/incidents/:id/action-items", jsonCall(s, "id", false, http.StatusCreated, (*incident.Service).AddActionItem), s.auth(ScopeWrite))
	api.GET("/incidents/:id/action-items", s.incidentActionItems, s.auth(ScopeRead))
	api.GET("/action-items", s.listActionItems, s.auth(ScopeRead))
	api.GET("/action-items/:aid", s.getActionItem, s.auth(ScopeRead))
	api.PATCH("/action-items/:aid", jsonCall(s, "aid", false, http.StatusOK, (*incident.Service).UpdateActionItem), s.auth(ScopeWrite))
	api.GET("/incidents/:id/postmortem", s.postmortem, s.auth(ScopeRead))
	api.PUT("/incidents/:id/postmortem", jsonCall(s, "id", false, http.StatusOK, (*incident.Service).EditPostmortem), s.auth(ScopeWrite))
	api.POST("/incidents/:id/postmortem/review", jsonCall(s, "id", true, http.StatusOK, (*incident.Service).ReviewPostmortem), s.auth(ScopeWrite))
	api.GET("/incidents/:id/postmortem/versions", s.postmortemVersions, s.auth(ScopeRead))
	api.GET("/incidents/:id/postmortem/versions/:n", s.postmortemVersion, s.auth(ScopeRead))
	api.GET("/admin/backup", s.getBackup, s.auth(ScopeAdmin))
	s.webRoutes(e)
	s.echo = e
	return s
}

// Handler is the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

const ctxTokenName = "responder.token"

// auth checks the bearer token against every configured token in constant
// time, then the scope. With no tokens configured (loopback only, enforced
// by config validation) every request is let through.
func (s *Server) auth(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if len(s.tokens) == 0 {
				return next(c)
			}
			h := c.Request().Header.Get(echo.HeaderAuthorization)
			if h == "" && (c.Request().Method == http.MethodGet || c.Request().Method == http.MethodHead) {
				// A browser logged in to the pages reads the API with its
				// session (the post-mortem link): reads only, so that no
				// other site can make it write without a CSRF token.
				if sess := s.readSession(c.Request()); sess != nil && sess.token != nil {
					return s.admitToken(c, next, sess.token, scope)
				}
			}
			scheme, presented, _ := strings.Cut(strings.TrimSpace(h), " ")
			presented = strings.TrimSpace(presented)
			if !strings.EqualFold(scheme, "Bearer") || presented == "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="responder"`)
				return errorf(http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
			}
			found := s.findToken(presented)
			if found == nil {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="responder", error="invalid_token"`)
				return errorf(http.StatusUnauthorized, "invalid bearer token")
			}
			return s.admitToken(c, next, found, scope)
		}
	}
}

// admitToken lets a request made with tok through when tok has scope.
func (s *Server) admitToken(c echo.Context, next echo.HandlerFunc, tok *hashedToken, scope string) error {
	// Every request made with the token counts, allowed or not.
	if err := s.limit(c, tok); err != nil {
		return err
	}
	if !tok.scopes[scope] {
		return errorf(http.StatusForbidden, "token %q lacks the %q scope", tok.name, scope)
	}
	c.Set(ctxTokenName, tok.name)
	return next(c)
}

// findToken is the configured token whose value is presented, or nil. It
// compares a hash of it with every token in constant time, without
// stopping early, so the time taken says nothing about which came close.
func (s *Server) findToken(presented string) *hashedToken {
	sum := sha256.Sum256([]byte(presented))
	var found *hashedToken
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	return found
}

// admit sheds webhook requests beyond MaxIngestInFlight with a 503 and
// Retry-After before their body is read or decoded: under overload the
// daemon spends its CPU on the requests it can write, not on bodies the
// write queue would refuse. Alertmanager and OpsGenie retry a 503. Each
// shed counts in responder_alerts_rejected_total{reason="in_flight"}.
func (s *Server) admit() echo.MiddlewareFunc {
	slots := make(chan struct{}, max(s.cfg.MaxIngestInFlight, 1))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if s.cfg.MaxIngestInFlight <= 0 {
			return next
		}
		return func(c echo.Context) error {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				return next(c)
			default:
				s.metrics.alertsRejected.WithLabelValues(sourceOfRoute(c.Path()), reasonInFlight).Inc()
				c.Response().Header().Set("Retry-After", strconv.Itoa(s.retryAfterSeconds()))
				return errorf(http.StatusServiceUnavailable, "busy: %d webhook requests are being written (http.max_ingest_in_flight), retry later", s.cfg.MaxIngestInFlight)
			}
		}
	}
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			s.echo.HTTPErrorHandler(err, c)
		}
		status := c.Response().Status
		level := zerolog.InfoLevel
		if status >= 500 {
			level = zerolog.WarnLevel
		}
		// The path only: a query string may carry what should not be logged.
		s.log.WithLevel(level).Str("method", c.Request().Method).
			Str("path", c.Request().URL.Path).
			Int("status", status).
			Int64("bytes_in", c.Request().ContentLength).
			Int64("bytes_out", c.Response().Size).
			Dur("latency", time.Since(start)).
			Str("remote", c.RealIP()).
			Msg("request")
		return nil
	}
}

// noSniff tells browsers to take every answer as the type it says (JSON,
// Markdown), never to guess HTML from text that alerts put in it.
func noSniff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}

func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if e, ok := r.(error); ok && errors.Is(e, http.ErrAbortHandler) {
					panic(r)
				}
				s.log.Error().Interface("panic", r).Str("path", c.Request().URL.Path).Msg("handler panicked")
				err = errorf(http.StatusInternalServerError, "internal error")
			}
		}()
		return next(c)
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// ready is the readiness check, one function for /readyz and the
// responder_ready gauge: the store accepts writes and, when there is one,
// the notification dispatcher runs.
func (s *Server) ready() error {
	if err := s.incidents.Ready(); err != nil {
		return err
	}
	if s.outbox != nil && !s.outbox.Running() {
		return errors.New("the notification dispatcher is not running")
	}
	return nil
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.ready(); err != nil {
		return errorf(http.StatusServiceUnavailable, "not ready: %v", err)
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// redactingJSON is echo's JSON serializer with secrets removed from every
// answer: a vendor's error kept as a notification's last_error, or a token
// a client put in a path, is never shown back.
type redactingJSON struct {
	echo.DefaultJSONSerializer
	r *integrations.Redactor
}

func (s redactingJSON) Serialize(c echo.Context, i any, indent string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(i); err != nil {
		return err
	}
	_, err := io.WriteString(c.Response(), s.r.Answer(b.String()))
	return err
}
