package handlers

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// The web pages: server-rendered with html/template, which escapes
// everything an alert or a person wrote; the stylesheet and the one small
// script are embedded files, so a strict Content-Security-Policy holds.
//
//go:embed web/templates/*.html web/static/*
var webFiles embed.FS

const ctxSession = "responder.session"

// pages are the parsed page templates by name.
type pages map[string]*template.Template

func newPages() (pages, error) {
	funcs := template.FuncMap{
		"utc":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"sevRank":   func(sev string) string { return strings.ToLower(sev) },
		"pageState": pageState,
		// stepAnchor makes a checklist step's id (RUNBOOK/N) an HTML id.
		"stepAnchor": func(id string) string { return strings.ReplaceAll(id, "/", "-") },
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(webFiles, "web/templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	names, err := fs.Glob(webFiles, "web/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("list page templates: %w", err)
	}
	p := pages{}
	for _, n := range names {
		short := strings.TrimSuffix(strings.TrimPrefix(n, "web/templates/"), ".html")
		if short == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(webFiles, n)
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", short, err)
		}
		p[short] = t
	}
	return p, nil
}

// pageData is what every page gets besides its own content.
type pageData struct {
	Title    string
	User     string // the token's name; "" when not logged in
	LoggedIn bool
	CSRF     string
	Now      time.Time
	Page     any
}

// webRoutes registers the pages on e.
func (s *Server) webRoutes(e *echo.Echo) {
	static, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		panic(fmt.Sprintf("embedded static files: %v", err)) // a build mistake, caught by every test
	}
	assets := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	e.GET("/static/*", echo.WrapHandler(assets), pageHeaders)

	e.GET("/login", s.loginPage, pageHeaders, s.session(""))
	e.POST("/login", s.login, pageHeaders, s.session(""))
	e.POST("/logout", s.logout, pageHeaders, s.session(""))
	e.GET("/", s.listPage, pageHeaders, s.session(ScopeRead))
	e.GET("/new", s.newPage, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents", s.declareForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/drills", s.drillForm, pageHeaders, s.session(ScopeWrite))
	e.GET("/incidents/:id", s.incidentPage, pageHeaders, s.session(ScopeRead))
	e.POST("/incidents/:id/ack", s.ackForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/roles", s.rolesForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/updates", s.updateForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/resolve", s.resolveForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/severity", s.severityForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/customer_impact", s.customersForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/reopen", s.reopenForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/notes", s.noteForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/page", s.pageForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/checklist", s.stepForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/runbooks", s.runbookForm, pageHeaders, s.session(ScopeWrite))
	e.GET("/incidents/:id/postmortem", s.postmortemPage, pageHeaders, s.session(ScopeRead))
	e.POST("/incidents/:id/postmortem", s.postmortemForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/postmortem/review", s.reviewForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/action-items", s.actionAddForm, pageHeaders, s.session(ScopeWrite))
	e.POST("/incidents/:id/action-items/:aid", s.actionForm, pageHeaders, s.session(ScopeWrite))
}

// pageHeaders sets the security headers of every page and asset.
func pageHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// session gives every visitor a session (a new one when the cookie is
// missing or invalid), checks the CSRF token of every POST, then the
// scope: a visitor not logged in goes to the login page. With no tokens
// configured (loopback only) every visitor has every scope, as in the API.
func (s *Server) session(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			sess := s.readSession(c.Request())
			if c.Request().Method == http.MethodPost {
				if err := s.readForm(c); err != nil {
					return s.errorPage(c, err)
				}
				if err := s.checkCSRF(c, sess); err != nil {
					return s.errorPage(c, err)
				}
			}
			if sess == nil {
				sess = s.newSession(c, "")
			}
			c.Set(ctxSession, sess)
			if scope == "" || len(s.tokens) == 0 {
				return next(c)
			}
			if sess.token == nil {
				if c.Request().Method == http.MethodGet {
					return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
				}
				return s.errorPage(c, errorf(http.StatusUnauthorized, "log in first: your session has ended"))
			}
			if err := s.limit(c, sess.token); err != nil {
				return s.errorPage(c, err)
			}
			if !sess.token.scopes[scope] {
				return s.errorPage(c, errorf(http.StatusForbidden, "token %q lacks the %q scope: log in with a token that has it", sess.name, scope))
			}
			c.Set(ctxTokenName, sess.name)
			return next(c)
		}
	}
}

// readForm parses a form post within the body limit.
func (s *Server) readForm(c echo.Context) error {
	r := c.Request()
	if err := uncompressed(r); err != nil {
		return err
	}
	if ct := r.Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationForm) {
		return errorf(http.StatusUnsupportedMediaType, "content type %q: send the form", integrations.Shorten(ct, 64))
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, s.cfg.BodyLimit)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "form is over the limit of %d bytes", s.cfg.BodyLimit)
		}
		return badRequest("read form: %v", err)
	}
	return nil
}

func sessionOf(c echo.Context) *session {
	sess, _ := c.Get(ctxSession).(*session)
	return sess
}

// render writes page name with status.
func (s *Server) render(c echo.Context, status int, name, title string, page any) error {
	sess := sessionOf(c)
	d := pageData{Title: title, Now: s.now(), Page: page}
	if sess != nil {
		d.User, d.LoggedIn, d.CSRF = sess.name, sess.token != nil, s.csrfToken(sess)
	}
	t, ok := s.pages[name]
	if !ok {
		return fmt.Errorf("no page template %q", name)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout.html", d); err != nil {
		return fmt.Errorf("render page %s: %w", name, err)
	}
	// Kept text was redacted where it entered (delivery errors); this is
	// the second line, for anything stored before or from elsewhere.
	return c.HTMLBlob(status, []byte(s.redactor.Answer(b.String())))
}

// errorPage answers with the status and message the API would give for
// err, as a page.
func (s *Server) errorPage(c echo.Context, err error) error {
	s.errorHandler(err, c)
	return nil
}

type loginData struct {
	Next  string
	Error string
	// PlainHTTP: the page came over plain HTTP from another host, where a
	// browser drops the Secure session cookie.
	PlainHTTP bool
}

func (s *Server) loginPage(c echo.Context) error {
	return s.showLogin(c, http.StatusOK, safeNext(c.QueryParam("next")), "")
}

func (s *Server) showLogin(c echo.Context, status int, next, msg string) error {
	r := c.Request()
	return s.render(c, status, "login", "Log in", loginData{Next: next, Error: msg, PlainHTTP: r.TLS == nil && secureCookie(r)})
}

// login checks the token like the API does and starts a logged-in session
// under a new id.
func (s *Server) login(c echo.Context) error {
	next := safeNext(postValue(c, "next"))
	if len(s.tokens) == 0 {
		return c.Redirect(http.StatusSeeOther, next)
	}
	tok := s.findToken(strings.TrimSpace(postValue(c, "token")))
	if tok == nil {
		return s.showLogin(c, http.StatusUnauthorized, next, "invalid token")
	}
	if err := s.limit(c, tok); err != nil {
		_, msg := s.statusOf(err, c)
		return s.showLogin(c, http.StatusTooManyRequests, next, msg)
	}
	if !tok.scopes[ScopeRead] {
		return s.showLogin(c, http.StatusForbidden, next, fmt.Sprintf("token %q lacks the %q scope: the pages need it", tok.name, ScopeRead))
	}
	s.newSession(c, tok.name)
	s.log.Info().Str("token_name", tok.name).Str("remote", c.RealIP()).Msg("web login")
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c echo.Context) error {
	s.endSession(c)
	return c.Redirect(http.StatusSeeOther, "/login")
}

// safeNext keeps a post-login redirect on this site: a path on this
// origin, never a scheme, a host, a backslash, a control character or
// white space (browsers drop tabs and newlines from a URL, so "/\t/evil"
// would become "//evil"). The answer is rebuilt from the parsed URL, so
// what the browser follows is what was checked.
func safeNext(next string) string {
	if next == "" || strings.ContainsRune(next, '\\') ||
		strings.IndexFunc(next, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.EscapedPath(), "//") ||
		strings.ContainsRune(u.Path, '\\') {
		return "/"
	}
	return u.RequestURI()
}

// listRow is one incident in the list.
type listRow struct {
	store.Incident
	Age string
}

type listData struct {
	Rows     []listRow
	Status   string
	Severity string
	Next     string
	Statuses []string
	Sevs     []string
	Query    string
}

// listPage shows incidents, open and acknowledged ones first, each group
// newest first, filtered like GET /api/v1/incidents.
func (s *Server) listPage(c echo.Context) error {
	page, err := s.incidents.List(c.Request().Context(), listQuery(c))
	if err != nil {
		return s.errorPage(c, err)
	}
	incs := page.Incidents
	sort.SliceStable(incs, func(i, j int) bool {
		return incs[i].Status != store.StatusResolved && incs[j].Status == store.StatusResolved
	})
	d := listData{Status: c.QueryParam("status"), Severity: c.QueryParam("severity"),
		Statuses: []string{string(store.StatusOpen), string(store.StatusAcknowledged), string(store.StatusResolved)},
		Sevs:     severityNames(), Query: c.Request().URL.RawQuery}
	if page.Next != "" {
		q := c.Request().URL.Query()
		q.Set("before", page.Next)
		d.Next = "/?" + q.Encode()
	}
	now := s.now()
	for _, inc := range incs {
		d.Rows = append(d.Rows, listRow{Incident: inc, Age: age(now.Sub(inc.CreatedAt))})
	}
	return s.render(c, http.StatusOK, "list", "Incidents", d)
}

func severityNames() []string {
	var out []string
	for _, sev := range policy.Severities() {
		out = append(out, sev.String())
	}
	return out
}

// age is a duration in words a person reads at a glance: 45s, 12m, 3h 4m, 2d 5h.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

type newData struct {
	Scenarios []string
	Sevs      []string
	Form      string // the form that failed: declare or drill
	Error     string
	Values    url.Values
}

func (s *Server) newPage(c echo.Context) error {
	return s.render(c, http.StatusOK, "new", "Declare an incident", s.newData("", "", nil))
}

func (s *Server) newData(form, msg string, v url.Values) newData {
	names := s.incidents.Scenarios()
	if v == nil {
		v = url.Values{}
	}
	return newData{Scenarios: names, Sevs: severityNames(), Form: form, Error: msg, Values: v}
}

// newFailed shows the declare page again with the error beside the form
// that failed, answering with the status the API would give.
func (s *Server) newFailed(c echo.Context, form string, err error) error {
	status, msg := s.statusOf(err, c)
	return s.render(c, status, "new", "Declare an incident", s.newData(form, msg, c.Request().PostForm))
}

func (s *Server) declareForm(c echo.Context) error {
	lbls, err := parseLabels(postValue(c, "labels"))
	if err != nil {
		return s.newFailed(c, "declare", err)
	}
	view, _, err := s.incidents.Declare(c.Request().Context(), incident.DeclareRequest{
		Title:          postValue(c, "title"),
		Severity:       postValue(c, "severity"),
		Description:    postValue(c, "description"),
		Labels:         lbls,
		CustomerImpact: postValue(c, "customer_impact") == "on",
		DeclaredBy:     postValue(c, "declared_by"),
	}, tokenName(c), incident.Idempotency{})
	if err != nil {
		return s.newFailed(c, "declare", err)
	}
	return c.Redirect(http.StatusSeeOther, "/incidents/"+view.ID)
}

func (s *Server) drillForm(c echo.Context) error {
	view, _, err := s.incidents.Drill(c.Request().Context(), incident.DrillRequest{
		Scenario: postValue(c, "scenario"),
		Severity: postValue(c, "severity"),
		By:       postValue(c, "by"),
	}, tokenName(c), incident.Idempotency{})
	if err != nil {
		return s.newFailed(c, "drill", err)
	}
	return c.Redirect(http.StatusSeeOther, "/incidents/"+view.ID)
}

// parseLabels reads labels written one name=value per line.
func parseLabels(text string) (map[string]string, error) {
	lbls := map[string]string{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, badRequest("labels: line %d %q: write name=value", i+1, integrations.Shorten(line, 64))
		}
		lbls[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return lbls, nil
}

type incidentData struct {
	*incident.View
	Form   string // the form that failed: ack, roles, update, resolve
	Error  string
	Values url.Values
	// Failed counts the notifications that could not be delivered.
	Failed        int
	PostmortemURL string
	// Pages are the pager's notifications (who was paged, and whether it
	// went); Sevs the severities the severity form offers.
	Pages []store.Intent
	Sevs  []string
	// CanPage: a pager is configured, so the page offers to page someone.
	CanPage bool
	// Marked counts the checklist steps done or skipped; Runbooks are the
	// configured runbooks not attached yet.
	Marked   int
	Runbooks []string
}

func (s *Server) incidentPage(c echo.Context) error {
	return s.showIncident(c, http.StatusOK, "", "")
}

// showIncident renders the incident page, with msg beside form when a
// form failed.
func (s *Server) showIncident(c echo.Context, status int, form, msg string) error {
	view, err := s.incidents.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return s.errorPage(c, err)
	}
	d := incidentData{View: view, Form: form, Error: msg, Values: c.Request().PostForm,
		PostmortemURL: "/incidents/" + view.ID + "/postmortem"}
	if d.Values == nil {
		d.Values = url.Values{}
	}
	d.Sevs = severityNames()
	d.CanPage = s.incidents.CanPage()
	attached := map[string]bool{}
	for _, st := range view.Checklist {
		attached[st.Runbook] = true
		if st.State != store.StepOpen {
			d.Marked++
		}
	}
	for _, name := range s.incidents.Runbooks() {
		if !attached[name] {
			d.Runbooks = append(d.Runbooks, name)
		}
	}
	for _, n := range view.Notifications {
		if n.State == store.IntentFailed {
			d.Failed++
		}
		if integrations.IsPage(n.Event) && n.Channel != integrations.ChannelLog {
			d.Pages = append(d.Pages, n)
		}
	}
	return s.render(c, status, "incident", view.ID+" "+view.Title, d)
}

// formDone sends the browser back to the incident after a change, or shows
// the page again with the error beside the form that failed.
func (s *Server) formDone(c echo.Context, form string, err error) error {
	if err != nil {
		status, msg := s.statusOf(err, c)
		return s.showIncident(c, status, form, msg)
	}
	return c.Redirect(http.StatusSeeOther, "/incidents/"+url.PathEscape(c.Param("id")))
}

func (s *Server) ackForm(c echo.Context) error {
	_, err := doChange(s, c, (*incident.Service).Acknowledge, incident.AckRequest{By: postValue(c, "by")})
	return s.formDone(c, "ack", err)
}

func (s *Server) resolveForm(c echo.Context) error {
	_, err := doChange(s, c, (*incident.Service).Resolve, incident.ResolveRequest{By: postValue(c, "by"), Summary: postValue(c, "summary")})
	return s.formDone(c, "resolve", err)
}

// rolesForm sets the roles filled in; an empty field keeps its holder.
func (s *Server) rolesForm(c echo.Context) error {
	req := incident.RolesRequest{By: postValue(c, "by")}
	if v := postValue(c, "recovery_lead"); strings.TrimSpace(v) != "" {
		req.RecoveryLead = &v
	}
	if v := postValue(c, "comms_lead"); strings.TrimSpace(v) != "" {
		req.CommsLead = &v
	}
	_, err := doChange(s, c, (*incident.Service).SetRoles, req)
	return s.formDone(c, "roles", err)
}

func (s *Server) updateForm(c echo.Context) error {
	req := incident.UpdateRequest{Text: postValue(c, "text"), By: postValue(c, "by")}
	if v := strings.TrimSpace(postValue(c, "eta_utc")); v != "" && strings.TrimSpace(postValue(c, "eta")) != "" {
		// The page's script read the typed ETA in the viewer's zone.
		eta, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return s.formDone(c, "update", badRequest("eta: %q is not a time like 2026-11-22 03:04", integrations.Shorten(postValue(c, "eta"), 64)))
		}
		eta = eta.UTC()
		req.ETA = &eta
	} else if v := strings.TrimSpace(postValue(c, "eta")); v != "" {
		eta, err := parseFormTime(v)
		if err != nil {
			return s.formDone(c, "update", err)
		}
		req.ETA = &eta
	}
	_, err := doChange(s, c, (*incident.Service).PostUpdate, req)
	return s.formDone(c, "update", err)
}

// parseFormTime reads a time typed in UTC: a datetime-local value
// (2026-11-22T03:04), the same with a space, or RFC 3339.
func parseFormTime(v string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badRequest("eta: %q is not a time like 2026-11-22 03:04 (UTC)", integrations.Shorten(v, 64))
}

// postValue is a field of the posted form; the query string never stands
// in for one.
func postValue(c echo.Context, name string) string {
	return c.Request().PostFormValue(name)
}

func (s *Server) severityForm(c echo.Context) error {
	_, err := doChange(s, c, (*incident.Service).SetSeverity, incident.SeverityRequest{
		Severity: postValue(c, "severity"), Reason: postValue(c, "reason"), By: postValue(c, "by")})
	return s.formDone(c, "severity", err)
}

// customersForm sets customer impact to the form's customer_impact (the
// page offers the opposite of the incident's).
func (s *Server) customersForm(c echo.Context) error {
	req := incident.CustomerImpactRequest{Reason: postValue(c, "reason"), By: postValue(c, "by")}
	switch postValue(c, "customer_impact") {
	case "true":
		req.CustomerImpact = new(true)
	case "false":
		req.CustomerImpact = new(false)
	}
	_, err := doChange(s, c, (*incident.Service).SetCustomerImpact, req)
	return s.formDone(c, "customers", err)
}

func (s *Server) reopenForm(c echo.Context) error {
	_, err := doChange(s, c, (*incident.Service).Reopen, incident.ReopenRequest{Reason: postValue(c, "reason"), By: postValue(c, "by")})
	return s.formDone(c, "reopen", err)
}

func (s *Server) noteForm(c echo.Context) error {
	_, err := doChange(s, c, (*incident.Service).AddNote, incident.NoteRequest{Text: postValue(c, "text"), By: postValue(c, "by")})
	return s.formDone(c, "note", err)
}

func (s *Server) pageForm(c echo.Context) error {
	_, err := doChange(s, c, (*incident.Service).Page, incident.PageRequest{
		Responder: postValue(c, "responder"), Reason: postValue(c, "reason"), By: postValue(c, "by")})
	return s.formDone(c, "page", err)
}

// stepForm marks a checklist step: the button pressed is the state.
func (s *Server) stepForm(c echo.Context) error {
	_, err := doChange(s, c, (*incident.Service).MarkStep, incident.StepRequest{
		Step: postValue(c, "step"), State: postValue(c, "state"), Reason: postValue(c, "reason"), By: postValue(c, "by")})
	return s.formDone(c, "checklist", err)
}

func (s *Server) runbookForm(c echo.Context) error {
	_, err := doChange(s, c, (*incident.Service).AttachRunbook, incident.RunbookRequest{Runbook: postValue(c, "runbook"), By: postValue(c, "by")})
	return s.formDone(c, "runbook", err)
}

// actionAddForm adds an action item from the incident page, or from the
// post-mortem editor (back=postmortem), and goes back there.
func (s *Server) actionAddForm(c echo.Context) error {
	_, err := s.incidents.AddActionItem(c.Request().Context(), c.Param("id"), incident.ActionItemRequest{Title: postValue(c, "title"),
		Owner: postValue(c, "owner"), Due: postValue(c, "due"), Link: postValue(c, "link"), By: postValue(c, "by")}, tokenName(c))
	if postValue(c, "back") == "postmortem" {
		return s.postmortemDone(c, "action", err)
	}
	return s.formDone(c, "action", err)
}

// actionForm changes an action item's state: the button pressed is the
// state.
func (s *Server) actionForm(c echo.Context) error {
	ctx := c.Request().Context()
	// The page of one incident changes that incident's items only.
	a, err := s.incidents.ActionItem(ctx, c.Param("aid"))
	if err == nil && a.IncidentID != c.Param("id") {
		err = &incident.Error{Kind: incident.NotFound, Msg: fmt.Sprintf("action item %s belongs to %s, not %s", a.ID, a.IncidentID,
			integrations.Shorten(c.Param("id"), 64))}
	}
	if err == nil {
		state := postValue(c, "state")
		_, err = s.incidents.UpdateActionItem(ctx, a.ID, incident.ActionUpdate{State: &state, Reason: postValue(c, "reason"),
			By: postValue(c, "by")}, tokenName(c))
	}
	return s.formDone(c, "action", err)
}

// postmortemData is the post-mortem editor.
type postmortemData struct {
	*incident.View
	State    *incident.PostmortemState // nil when none is stored
	Markdown string
	Base     int // the version the text shown is (0: the unsaved draft)
	Form     string
	Error    string
	Values   url.Values
}

func (s *Server) postmortemPage(c echo.Context) error {
	return s.showPostmortem(c, http.StatusOK, "", "")
}

// showPostmortem renders the post-mortem editor; after a refused save the
// text typed is shown again, with the version it was edited from.
func (s *Server) showPostmortem(c echo.Context, status int, form, msg string) error {
	ctx := c.Request().Context()
	view, err := s.incidents.Get(ctx, c.Param("id"))
	if err != nil {
		return s.errorPage(c, err)
	}
	md, err := s.incidents.Postmortem(ctx, view.ID)
	if err != nil {
		return s.errorPage(c, err)
	}
	d := postmortemData{View: view, Markdown: string(md), Form: form, Error: msg, Values: c.Request().PostForm}
	if d.Values == nil {
		d.Values = url.Values{}
	}
	switch st, err := s.incidents.PostmortemStateOf(ctx, view.ID); {
	case err == nil:
		d.State, d.Base = st, st.Version
	case incident.KindOf(err) != incident.NotFound:
		return s.errorPage(c, err)
	}
	if form == "pm" {
		d.Markdown = d.Values.Get("markdown")
		if n, err := strconv.Atoi(d.Values.Get("version")); err == nil {
			d.Base = n
		}
	}
	return s.render(c, status, "postmortem", "Post-mortem of "+view.ID, d)
}

// postmortemDone sends the browser back to the editor after a change, or
// shows it again with the error beside the form.
func (s *Server) postmortemDone(c echo.Context, form string, err error) error {
	if err != nil {
		status, msg := s.statusOf(err, c)
		return s.showPostmortem(c, status, form, msg)
	}
	return c.Redirect(http.StatusSeeOther, "/incidents/"+url.PathEscape(c.Param("id"))+"/postmortem")
}

func (s *Server) postmortemForm(c echo.Context) error {
	req := incident.PostmortemEdit{Markdown: postValue(c, "markdown"), Note: postValue(c, "note"), By: postValue(c, "by")}
	if n, err := strconv.Atoi(postValue(c, "version")); err == nil {
		req.Version = &n
	}
	_, err := s.incidents.EditPostmortem(c.Request().Context(), c.Param("id"), req, tokenName(c))
	return s.postmortemDone(c, "pm", err)
}

func (s *Server) reviewForm(c echo.Context) error {
	_, err := s.incidents.ReviewPostmortem(c.Request().Context(), c.Param("id"),
		incident.ReviewRequest{Note: postValue(c, "note"), By: postValue(c, "by")}, tokenName(c))
	return s.postmortemDone(c, "review", err)
}

// pageState says how a page went, for people: queued (not yet at the
// pager), delivered, failed, cancelled (resolved before it went).
func pageState(state string) string {
	switch state {
	case store.IntentPending:
		return "queued"
	case store.IntentSent:
		return "delivered"
	}
	return state
}
