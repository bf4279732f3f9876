// Package opsgenie gets a responder's phone to ring through OpsGenie's Alert
// API, with github.com/opsgenie/opsgenie-go-sdk-v2: it adds the responder to
// an incident that came from OpsGenie, or else creates an alert for the
// incident and closes it when the incident resolves. It tries once and says
// whether trying again may help; the outbox does the retrying.
//
// OpsGenie reaches end of support on 2027-04-05: nothing outside this
// package knows it is OpsGenie behind integrations.Notifier.
package opsgenie

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opsgenie/opsgenie-go-sdk-v2/alert"
	"github.com/opsgenie/opsgenie-go-sdk-v2/client"
	"github.com/sirupsen/logrus"

	"github.com/responder-sre/responder/integrations"
)

// API hosts and the default timeout.
const (
	DefaultAPIURL  = "api.opsgenie.com"
	EUAPIURL       = "api.eu.opsgenie.com"
	DefaultTimeout = 15 * time.Second
)

// OpsGenie's limits on the fields we send.
const (
	maxMessage     = 130
	maxAlias       = 512 // bytes here; OpsGenie counts characters, never more
	maxDescription = 15000
	maxNote        = 25000
	maxUser        = 100
	maxEntity      = 512
)

// Config is an OpsGenie API integration and whom to page.
type Config struct {
	// APIKey is the key of an API integration with create-and-update access.
	APIKey string
	// APIURL is the API host, without scheme or path: DefaultAPIURL when
	// empty, EUAPIURL for an EU account. The SDK calls a host without "api"
	// in its name over plain http, so New accepts such a host only on a
	// loopback address (a test server).
	APIURL string
	// Responder is paged.
	Responder Responder
	// HTTPClient makes every call. Nil gets a client with a DefaultTimeout
	// timeout; a client without a timeout is copied and given one.
	HTTPClient *http.Client
}

// Responder is whom OpsGenie notifies.
type Responder struct {
	// Type is user, team, escalation or schedule. Only a user or a team can
	// be added to an alert that already exists (an incident that came from
	// OpsGenie); all four can be on an alert Responder creates.
	Type string
	// Name, or else ID, names it: a user's Name is their username (email).
	Name string
	ID   string
}

// Notifier pages through OpsGenie. It is safe for concurrent use.
type Notifier struct {
	name      string // the pager's channel: opsgenie or jsm
	alerts    *alert.Client
	key       string
	responder Responder
	// rest adds responders to an alert that exists, for JSM, whose
	// integration API cannot (nil: OpsGenie's alert API does it).
	rest *jsmREST
	hc   *http.Client // for rest: the configured client, with a timeout
}

var _ integrations.Notifier = (*Notifier)(nil)

// New checks cfg and builds a Notifier; it makes no network call (the SDK's
// client constructor only sets fields). The error joins one error per
// problem, each starting with the field's config key (api_key, api_url,
// responder.type, responder.name, responder.id).
//
// The SDK is set up so that it never retries (the outbox does: its retry
// policy says no and records Retry-After), never logs (its logrus logger
// writes to io.Discard), and every call is bounded by the client's timeout
// even if a newer go-retryablehttp made it drop the context.
//
// Build notifiers before any of them sends, not while one does: the SDK's
// constructor writes a package variable (client.UserAgentHeader) that every
// request reads, a data race the race detector reports.
func New(cfg Config) (*Notifier, error) {
	return build(integrations.ChannelOpsGenie, cfg, DefaultAPIURL, "")
}

// build makes the notifier of pager name: the SDK on cfg, with every path
// under prefix (JSM serves OpsGenie's alert API under a path of its own).
func build(name string, cfg Config, defaultHost, prefix string) (*Notifier, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = defaultHost
	}
	var errs []error
	if strings.TrimSpace(cfg.APIKey) == "" {
		errs = append(errs, errors.New("api_key: required"))
	}
	if err := checkHost(cfg.APIURL, defaultHost); err != nil {
		errs = append(errs, fmt.Errorf("api_url: %w", err))
	}
	errs = append(errs, checkResponder(cfg.Responder)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	c := *hc // ours to change: the caller's client stays as it was
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	plain := c // for JSM's REST API: no SDK paths
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if prefix != "" {
		base = prefixPath{prefix: prefix, base: base}
	}
	c.Transport = escapeIdentifier{base: base}

	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	alerts, err := alert.NewClient(&client.Config{
		ApiKey:         cfg.APIKey,
		OpsGenieAPIURL: client.ApiUrl(cfg.APIURL),
		HttpClient:     &c,
		// RequestTimeout is left 0: the SDK would write it into HttpClient.
		RetryPolicy: noRetry,
		Logger:      quiet,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Notifier{name: name, alerts: alerts, key: cfg.APIKey, responder: cfg.Responder, hc: &plain}, nil
}

func checkHost(host, example string) error {
	if example == DefaultAPIURL {
		example += " or " + EUAPIURL
	}
	if strings.Contains(host, "://") || strings.ContainsAny(host, "/?#@ ") {
		return fmt.Errorf("%q: a host only, such as %s", host, example)
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "" {
		return fmt.Errorf("%q: a host only, such as %s", host, example)
	}
	if !strings.Contains(host, "api") && !integrations.IsLoopback(h) {
		return fmt.Errorf("%q: the SDK would call it over plain http (it uses https only for a host with \"api\" in it)", host)
	}
	return nil
}

func checkResponder(r Responder) []error {
	var errs []error
	switch r.Type {
	case "user", "team", "escalation", "schedule":
	case "":
		errs = append(errs, errors.New("responder.type: required (user, team, escalation or schedule)"))
	default:
		errs = append(errs, fmt.Errorf("responder.type: %q is not user, team, escalation or schedule", r.Type))
	}
	switch {
	case r.Name == "" && r.ID == "":
		errs = append(errs, errors.New("responder.name: name or id required"))
	case r.Name != "" && r.ID != "":
		errs = append(errs, errors.New("responder.id: give name or id, not both"))
	}
	return errs
}

// Name is the pager's channel: "opsgenie", or "jsm" (NewJSM).
func (n *Notifier) Name() string { return n.name }

// Notify delivers an outbox message through the Pager calls.
func (n *Notifier) Notify(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	return integrations.NotifyPager(ctx, n, m)
}

var _ integrations.Pager = (*Notifier)(nil)

// Page gets m.Target's phone to ring. For an incident whose Source is
// "opsgenie" it adds the responder to that alert, identified by the
// incident's DedupKey as alias. For any other incident it creates an alert
// with an alias of its own (see aliasFor): retrying is safe, as OpsGenie
// folds a create into the open alert with the same alias.
//
// m.Target names the responder: the configured one's label ("team:sre", or
// "team:<id>" for one given by ID), or "type:name" (integrations.Responder)
// for someone a person asked to page.
func (n *Notifier) Page(ctx context.Context, m integrations.Message) error {
	ctx, st := withCall(ctx)
	r, err := n.responderFor(m.Target)
	if err != nil {
		return integrations.Permanent(err)
	}
	if m.Incident.Source == n.name {
		return n.addResponder(ctx, st, m, m.Incident.DedupKey, r)
	}
	return n.create(ctx, st, m, r)
}

// AddResponder adds m.Target to the alert Page created (someone asked for
// more people), or to the incident's own OpsGenie alert.
func (n *Notifier) AddResponder(ctx context.Context, m integrations.Message) error {
	ctx, st := withCall(ctx)
	r, err := n.responderFor(m.Target)
	if err != nil {
		return integrations.Permanent(err)
	}
	alias, err := AlertAlias(n.name, m.Incident)
	if err != nil {
		return integrations.Permanent(err)
	}
	return n.addResponder(ctx, st, m, alias, r)
}

// Note adds m.Text to the alert the incident paged: the OpsGenie alert it
// came from, or the one Responder created.
func (n *Notifier) Note(ctx context.Context, m integrations.Message) error {
	ctx, st := withCall(ctx)
	return n.note(ctx, st, m)
}

// Acknowledge acknowledges the alert Responder created, by m.By.
func (n *Notifier) Acknowledge(ctx context.Context, m integrations.Message) error {
	ctx, st := withCall(ctx)
	alias, err := aliasFor(n.name, m.Incident)
	if err != nil {
		return integrations.Permanent(err)
	}
	user := "Responder"
	if m.By != "" {
		user = m.By
	}
	req := &alert.AcknowledgeAlertRequest{
		IdentifierType:  alert.ALIAS,
		IdentifierValue: alias,
		User:            truncate(user, maxUser),
		Source:          "responder",
		Note:            truncate("acknowledged in Responder: "+m.Text, maxNote),
	}
	if _, err := n.alerts.Acknowledge(ctx, req); err != nil {
		return n.fail("acknowledge alert", st, err)
	}
	return nil
}

// Close closes the alert Responder created.
func (n *Notifier) Close(ctx context.Context, m integrations.Message) error {
	ctx, st := withCall(ctx)
	return n.close(ctx, st, m)
}

func withCall(ctx context.Context) (context.Context, *call) {
	st := &call{}
	return context.WithValue(ctx, callKey{}, st), st
}

// AlertAlias is the alias of the incident's alert in pager (opsgenie or
// jsm): its own alert's, when it came from that pager, else the one
// Responder created.
func AlertAlias(pager string, inc integrations.Incident) (string, error) {
	if inc.Source == pager {
		return inc.DedupKey, nil
	}
	return aliasFor(pager, inc)
}

// Label is how the configured responder is named in a page's target.
func (r Responder) Label() string {
	if r.Name != "" {
		return r.Type + ":" + r.Name
	}
	return r.Type + ":" + r.ID
}

// responderFor is the responder a page's target names: the configured one
// by its label, else someone named "type:name".
func (n *Notifier) responderFor(target string) (Responder, error) {
	if target == "" || target == n.responder.Label() {
		return n.responder, nil
	}
	r, err := integrations.ParseResponder(target)
	if err != nil {
		return Responder{}, fmt.Errorf("%s: responder %w", n.name, err)
	}
	return Responder{Type: r.Type, Name: r.Name}, nil
}

func (n *Notifier) create(ctx context.Context, st *call, m integrations.Message, r Responder) error {
	inc := m.Incident
	alias, err := aliasFor(n.name, inc)
	if err != nil {
		return integrations.Permanent(err)
	}
	req := &alert.CreateAlertRequest{
		Message:     message(inc),
		Alias:       alias,
		Description: truncate(description(inc), maxDescription),
		Responders:  []alert.Responder{sdkResponder(r)},
		Tags:        tags(inc),
		Details:     details(inc),
		Entity:      truncate(inc.Team, maxEntity),
		Source:      "responder",
		Priority:    priority(inc.Severity),
		User:        "Responder",
	}
	if _, err := n.alerts.Create(ctx, req); err != nil {
		return n.fail("create alert", st, err)
	}
	return nil
}

func (n *Notifier) addResponder(ctx context.Context, st *call, m integrations.Message, alias string, r Responder) error {
	inc := m.Incident
	if alias == "" {
		return integrations.Permanent(fmt.Errorf("%s: add responder: the incident has no alias", n.name))
	}
	note := fmt.Sprintf("Paged by Responder for %s [%s] %s", inc.ID, inc.Severity, inc.Title)
	if inc.URL != "" {
		note += ": " + inc.URL
	}
	switch {
	case n.rest != nil:
		return n.rest.addResponder(ctx, n.hc, alias, r, truncate(note, maxNote))
	case n.name == integrations.ChannelJSM:
		return integrations.Permanent(errors.New("jsm: add responder: JSM's integration API cannot add a responder to an alert that exists: " +
			"set notifications.jsm.rest (cloud_id, email, api_token_file) so that Responder can, through JSM's REST API"))
	case r.Type != "user" && r.Type != "team":
		return integrations.Permanent(fmt.Errorf("opsgenie: add responder: OpsGenie adds only a user or a team to an existing alert, not a %s", r.Type))
	}
	req := &alert.AddResponderRequest{
		IdentifierType:  alert.ALIAS,
		IdentifierValue: alias,
		Responder:       sdkResponder(r),
		User:            "Responder",
		Source:          "responder",
		Note:            truncate(note, maxNote),
	}
	if _, err := n.alerts.AddResponder(ctx, req); err != nil {
		return n.fail("add responder", st, err)
	}
	return nil
}

// note adds m.Text to the alert the incident paged: the OpsGenie alert it
// came from, or the one Responder created.
func (n *Notifier) note(ctx context.Context, st *call, m integrations.Message) error {
	alias, err := AlertAlias(n.name, m.Incident)
	if err != nil {
		return integrations.Permanent(err)
	}
	if alias == "" {
		return integrations.Permanent(fmt.Errorf("%s: add note: the incident has no alias", n.name))
	}
	req := &alert.AddNoteRequest{
		IdentifierType:  alert.ALIAS,
		IdentifierValue: alias,
		User:            "Responder",
		Source:          "responder",
		Note:            truncate(m.Text, maxNote),
	}
	if _, err := n.alerts.AddNote(ctx, req); err != nil {
		return n.fail("add note", st, err)
	}
	return nil
}

func (n *Notifier) close(ctx context.Context, st *call, m integrations.Message) error {
	inc := m.Incident
	alias, err := aliasFor(n.name, inc)
	if err != nil {
		return integrations.Permanent(err)
	}
	by := m.By
	if by == "" {
		by = inc.ResolvedBy
	}
	note, user := "resolved in Responder", "Responder"
	if by != "" {
		note += " by " + by
		user = by
	}
	if inc.Summary != "" {
		note += ": " + inc.Summary
	}
	req := &alert.CloseAlertRequest{
		IdentifierType:  alert.ALIAS,
		IdentifierValue: alias,
		User:            truncate(user, maxUser),
		Source:          "responder",
		Note:            truncate(note, maxNote),
	}
	if _, err := n.alerts.Close(ctx, req); err != nil {
		return n.fail("close alert", st, err)
	}
	return nil
}

// Alias is the OpsGenie alias of the alert Responder creates for an
// incident with this dedup key: the key itself when it is at most 512 bytes
// (OpsGenie's limit is 512 characters), else the hex SHA-256 of the key
// (64 characters), so a long Alertmanager group key still deduplicates.
func Alias(dedupKey string) string {
	if len(dedupKey) <= maxAlias {
		return dedupKey
	}
	sum := sha256.Sum256([]byte(dedupKey))
	return hex.EncodeToString(sum[:])
}

// aliasFor is the alias of inc's alert: for an incident from OpsGenie, its
// own alias; else one per incident and per Responder installation,
// "responder/<host of the incident URL>/<id>", so that a page for a new
// incident of the same Alertmanager group is never folded into (or closed
// with) the alert of an earlier one, and staging never closes production's.
func aliasFor(pager string, inc integrations.Incident) (string, error) {
	switch {
	case inc.Source == pager && inc.DedupKey != "":
		return inc.DedupKey, nil
	case inc.ID != "":
		host := "responder"
		if u, err := url.Parse(inc.URL); err == nil && u.Host != "" {
			host = u.Host
		}
		return Alias("responder/" + host + "/" + inc.ID), nil
	}
	return "", fmt.Errorf("%s: the incident has neither a dedup key nor an ID to make an alias of", pager)
}

func sdkResponder(r Responder) alert.Responder {
	out := alert.Responder{Type: alert.ResponderType(r.Type), Id: r.ID}
	if r.Type == "user" {
		out.Username = r.Name
	} else {
		out.Name = r.Name
	}
	return out
}

func message(inc integrations.Incident) string {
	s := fmt.Sprintf("[%s] %s", inc.Severity, inc.Title)
	if inc.Drill {
		s = "[DRILL] " + s
	}
	return truncate(s, maxMessage)
}

func priority(severity string) alert.Priority {
	switch severity {
	case "S1":
		return alert.P1
	case "S2":
		return alert.P2
	case "S3":
		return alert.P3
	case "S4":
		return alert.P4
	}
	return "" // OpsGenie's default, P3
}

func tags(inc integrations.Incident) []string {
	t := []string{"responder"}
	if inc.Severity != "" {
		t = append(t, truncate(inc.Severity, 50))
	}
	if inc.Drill {
		t = append(t, "drill")
	}
	return t
}

func details(inc integrations.Incident) map[string]string {
	d := map[string]string{"incident_id": inc.ID, "severity": inc.Severity, "source": inc.Source}
	if inc.URL != "" {
		d["url"] = inc.URL
	}
	if inc.Team != "" {
		d["team"] = inc.Team
	}
	if inc.Drill {
		d["drill"] = "true"
	}
	return d
}

// description says, on the phone, what is burning and where to look.
func description(inc integrations.Incident) string {
	var b strings.Builder
	if inc.Drill {
		b.WriteString("DRILL: an exercise, not a real incident.\n\n")
	}
	if inc.Description != "" {
		b.WriteString(inc.Description)
		b.WriteString("\n\n")
	}
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	line("Incident", strings.TrimSpace(inc.ID+" "+inc.URL))
	line("Severity", inc.Severity)
	line("Team", inc.Team)
	line("Source", strings.TrimSpace(inc.Source+" "+inc.SourceURL))
	line("Runbook", inc.RunbookURL)
	line("Zoom", inc.ZoomURL)
	if len(inc.Labels) > 0 {
		keys := make([]string, 0, len(inc.Labels))
		for k := range inc.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("Labels:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s=%s\n", k, inc.Labels[k])
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// truncate cuts s to at most limit characters, marking the cut with "…".
func truncate(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// call carries what the retry policy saw of one call's answer.
type call struct {
	retryAfter time.Duration
}

type callKey struct{}

// noRetry is the SDK's retry policy: never retry (the outbox does), and
// keep the answer's Retry-After, which the SDK's ApiError does not carry.
// The SDK calls it with the request's context, ours.
func noRetry(ctx context.Context, resp *http.Response, _ error) (bool, error) {
	if st, ok := ctx.Value(callKey{}).(*call); ok && resp != nil {
		st.retryAfter = integrations.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return false, nil
}

// fail classifies an SDK error: an HTTP 429 or 5xx may pass (after
// Retry-After when given), another status will not; a network error or
// timeout may pass; anything else (the SDK refusing a request before
// sending it, an answer it cannot read) will not.
func (n *Notifier) fail(what string, st *call, err error) error {
	var api *client.ApiError
	if errors.As(err, &api) {
		text := fmt.Sprintf("%s: %s: HTTP %d %s", n.name, what, api.StatusCode, http.StatusText(api.StatusCode))
		if api.Message != "" {
			text += ": " + truncate(api.Message, 200)
		}
		if len(api.Errors) > 0 {
			keys := make([]string, 0, len(api.Errors))
			for k := range api.Errors {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				text += fmt.Sprintf("; %s: %s", k, truncate(api.Errors[k], 200))
			}
		}
		if api.RequestId != "" {
			text += " (request " + api.RequestId + ")"
		}
		e := &redactedError{text: text, err: err, secret: n.key}
		if api.StatusCode == http.StatusTooManyRequests || api.StatusCode >= 500 {
			return integrations.Temporary(e, st.retryAfter)
		}
		return integrations.Permanent(e)
	}
	e := &redactedError{err: fmt.Errorf("%s: %s: %w", n.name, what, err), secret: n.key}
	if retry, _ := integrations.Retryable(err); retry {
		return integrations.Temporary(e, 0)
	}
	return integrations.Permanent(e)
}

// redactedError shows text (or err's text) with the API key hidden; the
// chain stays for errors.Is and errors.As.
type redactedError struct {
	text   string
	err    error
	secret string
}

func (e *redactedError) Error() string {
	s := e.text
	if s == "" {
		s = e.err.Error()
	}
	if e.secret != "" {
		s = strings.ReplaceAll(s, e.secret, "<redacted>")
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }

// escapeIdentifier puts back the escaping the SDK leaves out: it builds
// "/v2/alerts/" + identifier + "/close" as a decoded path, so a "/" in an
// alias (Alertmanager group keys have them) would split it into several
// path segments and miss the alert. The identifier goes out as one
// escaped segment (%2F), as OpsGenie's API expects.
type escapeIdentifier struct {
	base http.RoundTripper
}

func (t escapeIdentifier) RoundTrip(r *http.Request) (*http.Response, error) {
	id, action, ok := alertAction(r.URL.Path)
	if !ok || !strings.Contains(id, "/") {
		return t.base.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawPath = "/v2/alerts/" + url.PathEscape(id) + "/" + action
	return t.base.RoundTrip(r2)
}

// alertAction splits "/v2/alerts/<identifier>/<action>" for the actions
// this package calls.
func alertAction(path string) (id, action string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v2/alerts/")
	if !ok {
		return "", "", false
	}
	for _, a := range []string{"close", "acknowledge", "responders", "notes"} {
		if id, ok := strings.CutSuffix(rest, "/"+a); ok && id != "" {
			return id, a, true
		}
	}
	return "", "", false
}
