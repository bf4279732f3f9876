// Package pagerduty gets a responder's phone to ring through PagerDuty:
// the Events API v2 raises, acknowledges and resolves one alert per
// incident (its dedup_key), and, when a REST API token is configured, the
// REST API adds responders to the incident (responder requests) and notes
// to it. It uses github.com/PagerDuty/go-pagerduty, pointed at the
// configured endpoints with our HTTP client; it tries once and says whether
// trying again may help: the outbox does the retrying.
package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/responder-sre/responder/integrations"
)

// Endpoints and the default timeout.
const (
	DefaultEventsURL = "https://events.pagerduty.com"
	DefaultRESTURL   = "https://api.pagerduty.com"
	DefaultTimeout   = 15 * time.Second
	// Label names the service's own on-call in a page's target: the
	// routing key's service decides whom PagerDuty pages.
	Label = "service:on-call"
)

// PagerDuty's limits on what we send.
const (
	maxSummary  = 1024
	maxDedupKey = 255
	maxNote     = 25000
)

// Config is a PagerDuty service's Events API v2 integration and, optionally,
// REST API access.
type Config struct {
	// RoutingKey is the service's Events API v2 integration key.
	RoutingKey string
	// EventsURL is the Events API base, DefaultEventsURL when empty.
	EventsURL string
	// REST, when set, lets Responder add a responder to an incident and a
	// note (the bridge's link) to it. Without it only the service's on-call
	// is paged, and notes are not sent.
	REST *REST
	// Responder, when set, is asked to join every incident paged out of
	// hours besides the service's on-call: "user:PXXXXXX" (the team lead)
	// or "escalation:PXXXXXX", by PagerDuty ID; it needs REST.
	Responder  string
	HTTPClient *http.Client
}

// REST is access to PagerDuty's REST API.
type REST struct {
	URL   string // DefaultRESTURL when empty
	Token string // a REST API key
	// From is the email of the PagerDuty user the requests are made as;
	// RequesterID is that user's ID (responder requests name a requester).
	From        string
	RequesterID string
}

// Notifier pages through PagerDuty. It is safe for concurrent use.
type Notifier struct {
	label      string // the configured responder, or Label
	events     *pd.Client
	rest       *pd.Client // nil without REST access
	routingKey string
	from, req  string
	secrets    []string
}

var (
	_ integrations.Notifier = (*Notifier)(nil)
	_ integrations.Pager    = (*Notifier)(nil)
)

// New checks cfg and builds a Notifier; it makes no network call. The
// error joins one error per problem, each starting with its config key.
func New(cfg Config) (*Notifier, error) {
	if cfg.EventsURL == "" {
		cfg.EventsURL = DefaultEventsURL
	}
	var errs []error
	if strings.TrimSpace(cfg.RoutingKey) == "" {
		errs = append(errs, errors.New("routing_key: required (the service's Events API v2 integration key)"))
	}
	if err := checkURL(cfg.EventsURL); err != nil {
		errs = append(errs, fmt.Errorf("events_url: %w", err))
	}
	if r := cfg.REST; r != nil {
		if r.URL == "" {
			r.URL = DefaultRESTURL
		}
		if err := checkURL(r.URL); err != nil {
			errs = append(errs, fmt.Errorf("rest.url: %w", err))
		}
		if strings.TrimSpace(r.Token) == "" {
			errs = append(errs, errors.New("rest.token: required"))
		}
		if !strings.Contains(r.From, "@") {
			errs = append(errs, errors.New("rest.from: required: the email of the PagerDuty user Responder acts as"))
		}
		if strings.TrimSpace(r.RequesterID) == "" {
			errs = append(errs, errors.New("rest.requester_id: required: that user's PagerDuty ID (PXXXXXX)"))
		}
	}
	if cfg.Responder != "" {
		if _, err := responderTarget(cfg.Responder); err != nil {
			errs = append(errs, fmt.Errorf("responder: %w", err))
		} else if cfg.REST == nil {
			errs = append(errs, errors.New("responder: needs rest: a responder is asked to join through the REST API"))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	c := *hc // ours to change
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = retryAfterHeader{base: base}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	n := &Notifier{label: Label, routingKey: cfg.RoutingKey, secrets: []string{cfg.RoutingKey}}
	if cfg.Responder != "" {
		n.label = cfg.Responder
	}
	n.events = pd.NewClient("", pd.WithV2EventsAPIEndpoint(strings.TrimRight(cfg.EventsURL, "/")))
	n.events.HTTPClient = &c
	if r := cfg.REST; r != nil {
		n.rest = pd.NewClient(r.Token, pd.WithAPIEndpoint(strings.TrimRight(r.URL, "/")))
		n.rest.HTTPClient = &c
		n.from, n.req = r.From, r.RequesterID
		n.secrets = append(n.secrets, r.Token)
	}
	return n, nil
}

func checkURL(v string) error {
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("%q is not an http(s) URL", v)
	case u.Scheme == "http" && !integrations.IsLoopback(u.Hostname()):
		return fmt.Errorf("%q: https only (http is for a test server on loopback)", v)
	}
	return nil
}

// Responder is how a page names the configured responder: the one asked
// to join, else Label (the service's on-call, whom PagerDuty pages).
func (n *Notifier) Responder() string { return n.label }

// Name is "pagerduty".
func (n *Notifier) Name() string { return integrations.ChannelPagerDuty }

// Notify delivers an outbox message through the Pager calls.
func (n *Notifier) Notify(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	return integrations.NotifyPager(ctx, n, m)
}

// Page raises the incident's alert: a trigger event whose dedup_key is the
// incident's (retrying it folds into the same alert), routed by the
// service to its on-call. A target other than the service's on-call is
// then asked to join through a responder request. For an incident that
// came from PagerDuty, the target is asked to join that incident.
func (n *Notifier) Page(ctx context.Context, m integrations.Message) error {
	ctx, st := withCall(ctx)
	if m.Incident.Source == integrations.ChannelPagerDuty {
		if m.Target == "" || m.Target == Label {
			return nil // PagerDuty paged its on-call when it opened the incident
		}
		return n.AddResponder(ctx, m)
	}
	inc := m.Incident
	key, err := DedupKey(inc)
	if err != nil {
		return integrations.Permanent(err)
	}
	ev := &pd.V2Event{
		RoutingKey: n.routingKey, Action: "trigger", DedupKey: key,
		Client: "Responder", ClientURL: inc.URL,
		Payload: &pd.V2Payload{
			Summary: clip(summary(inc), maxSummary), Source: "responder", Severity: severity(inc.Severity),
			Timestamp: inc.CreatedAt.UTC().Format(time.RFC3339), Component: inc.Labels["service"], Group: inc.Team,
			Class: inc.Labels["alertname"], Details: details(inc),
		},
	}
	if inc.URL != "" {
		ev.Links = append(ev.Links, map[string]string{"href": inc.URL, "text": "Incident " + inc.ID + " in Responder"})
	}
	if inc.ZoomURL != "" {
		ev.Links = append(ev.Links, map[string]string{"href": inc.ZoomURL, "text": "Join the bridge (Zoom)"})
	}
	if _, err := n.events.ManageEventWithContext(ctx, ev); err != nil {
		return n.fail("trigger", st, err)
	}
	if m.Target == "" || m.Target == Label {
		return nil
	}
	return n.AddResponder(ctx, m)
}

// AddResponder asks m.Target ("user:PXXXXXX" or "escalation:PXXXXXX", by
// PagerDuty ID) to join the incident, through the REST API's responder
// requests.
func (n *Notifier) AddResponder(ctx context.Context, m integrations.Message) error {
	ctx, st := withCall(ctx)
	target, err := responderTarget(m.Target)
	if err != nil {
		return integrations.Permanent(err)
	}
	if n.rest == nil {
		return integrations.Permanent(errors.New("pagerduty: add responder: no REST API token (notifications.pagerduty.rest): " +
			"only the service's on-call is paged"))
	}
	id, err := n.incidentID(ctx, st, m.Incident)
	if err != nil {
		return err
	}
	inc := m.Incident
	msg := fmt.Sprintf("Responder asks you to join %s [%s] %s", inc.ID, inc.Severity, inc.Title)
	if inc.URL != "" {
		msg += ": " + inc.URL
	}
	if inc.ZoomURL != "" {
		msg += " (bridge: " + inc.ZoomURL + ")"
	}
	_, err = n.rest.ResponderRequestWithContext(ctx, id, pd.ResponderRequestOptions{
		From: n.from, RequesterID: n.req, Message: clip(msg, 1000),
		Targets: []pd.ResponderRequestTargetWrapper{{Target: pd.ResponderRequestTarget{APIObject: target}}},
	})
	if err != nil {
		return n.fail("responder request", st, err)
	}
	return nil
}

// Note adds m.Text to the incident as a note, through the REST API.
func (n *Notifier) Note(ctx context.Context, m integrations.Message) error {
	ctx, st := withCall(ctx)
	if n.rest == nil {
		return integrations.Permanent(errors.New("pagerduty: add note: no REST API token (notifications.pagerduty.rest)"))
	}
	id, err := n.incidentID(ctx, st, m.Incident)
	if err != nil {
		return err
	}
	_, err = n.rest.CreateIncidentNoteWithContext(ctx, id, pd.IncidentNote{
		User: pd.APIObject{ID: n.req, Type: "user_reference", Summary: n.from}, Content: clip(m.Text, maxNote),
	})
	if err != nil {
		return n.fail("add note", st, err)
	}
	return nil
}

// Acknowledge acknowledges the alert Responder raised.
func (n *Notifier) Acknowledge(ctx context.Context, m integrations.Message) error {
	return n.event(ctx, "acknowledge", m)
}

// Close resolves the alert Responder raised.
func (n *Notifier) Close(ctx context.Context, m integrations.Message) error {
	return n.event(ctx, "resolve", m)
}

func (n *Notifier) event(ctx context.Context, action string, m integrations.Message) error {
	ctx, st := withCall(ctx)
	key, err := DedupKey(m.Incident)
	if err != nil {
		return integrations.Permanent(err)
	}
	if _, err := n.events.ManageEventWithContext(ctx, &pd.V2Event{RoutingKey: n.routingKey, Action: action, DedupKey: key}); err != nil {
		return n.fail(action, st, err)
	}
	return nil
}

// incidentID is the PagerDuty incident of inc: its own ID when it came
// from PagerDuty, else the one the trigger opened, found by its
// incident_key (the dedup_key). PagerDuty processes events asynchronously:
// an incident not found yet is worth retrying.
func (n *Notifier) incidentID(ctx context.Context, st *call, inc integrations.Incident) (string, error) {
	if inc.Source == integrations.ChannelPagerDuty && inc.DedupKey != "" {
		return inc.DedupKey, nil
	}
	key, err := DedupKey(inc)
	if err != nil {
		return "", integrations.Permanent(err)
	}
	resp, err := n.rest.ListIncidentsWithContext(ctx, pd.ListIncidentsOptions{IncidentKey: key, DateRange: "all", Limit: 1})
	if err != nil {
		if ferr := n.fail("find the incident", st, err); ferr != nil {
			return "", ferr
		}
		return "", integrations.Temporary(fmt.Errorf("pagerduty: find the incident: unreadable answer: %w", err), 0)
	}
	if len(resp.Incidents) == 0 {
		return "", integrations.Temporary(fmt.Errorf("pagerduty: no incident with incident_key %q yet (PagerDuty processes events asynchronously)", key), 5*time.Second)
	}
	return resp.Incidents[0].ID, nil
}

// DedupKey is the dedup_key of the alert Responder raises for inc: one per
// incident and per Responder installation ("responder/<host of the
// incident URL>/<id>"), so that staging never resolves production's.
func DedupKey(inc integrations.Incident) (string, error) {
	if inc.ID == "" {
		return "", errors.New("pagerduty: the incident has no ID to make a dedup_key of")
	}
	host := "responder"
	if u, err := url.Parse(inc.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	return clip("responder/"+host+"/"+inc.ID, maxDedupKey), nil
}

// responderTarget reads a target PagerDuty can ask to join: a user or an
// escalation policy, by ID.
func responderTarget(target string) (pd.APIObject, error) {
	r, err := integrations.ParseResponder(target)
	if err != nil {
		return pd.APIObject{}, fmt.Errorf("pagerduty: responder %w", err)
	}
	switch r.Type {
	case "user":
		return pd.APIObject{ID: r.Name, Type: "user_reference"}, nil
	case "escalation":
		return pd.APIObject{ID: r.Name, Type: "escalation_policy_reference"}, nil
	}
	return pd.APIObject{}, fmt.Errorf("pagerduty: a responder request asks a user or an escalation policy (by ID: user:PXXXXXX, escalation:PXXXXXX), not a %s", r.Type)
}

func summary(inc integrations.Incident) string {
	s := fmt.Sprintf("[%s] %s", inc.Severity, inc.Title)
	if inc.Drill {
		s = "[DRILL] " + s
	}
	return s
}

// severity maps S1..S4 to PagerDuty's event severities.
func severity(sev string) string {
	switch sev {
	case "S1":
		return "critical"
	case "S2":
		return "error"
	case "S3":
		return "warning"
	}
	return "info"
}

func details(inc integrations.Incident) map[string]string {
	d := map[string]string{"incident_id": inc.ID, "severity": inc.Severity, "source": inc.Source}
	set := func(k, v string) {
		if v != "" {
			d[k] = v
		}
	}
	set("url", inc.URL)
	set("team", inc.Team)
	set("bridge", inc.ZoomURL)
	set("runbook", inc.RunbookURL)
	set("description", clip(inc.Description, 2000))
	if inc.Drill {
		d["drill"] = "true: an exercise, not a real incident"
	}
	keys := make([]string, 0, len(inc.Labels))
	for k := range inc.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, taken := d[k]; !taken && len(d) < 40 {
			d["label_"+k] = clip(inc.Labels[k], 500)
		}
	}
	return d
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
