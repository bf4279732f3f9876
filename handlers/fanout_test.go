package handlers

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/timeinterval"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/email"
	"github.com/responder-sre/responder/integrations/email/smtptest"
	"github.com/responder-sre/responder/integrations/opsgenie"
	"github.com/responder-sre/responder/integrations/opsgenie/opsgenietest"
	"github.com/responder-sre/responder/integrations/pagerduty"
	"github.com/responder-sre/responder/integrations/pagerduty/pagerdutytest"
	"github.com/responder-sre/responder/integrations/slack"
	"github.com/responder-sre/responder/integrations/slack/slacktest"
	"github.com/responder-sre/responder/integrations/zoom"
	"github.com/responder-sre/responder/integrations/zoom/zoomtest"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// Secrets of the fake vendors: none may ever show in a log line or an error.
const (
	slackToken   = "xoxb-test-0000-slack-secret-token"
	ogKey        = "og-api-key-0000-secret"
	zoomSecret   = "zoom-client-secret-0000"
	smtpPassword = "smtp-password-0000-secret"
	jsmKey       = "jsm-api-key-0000-secret"
	pdRoutingKey = "pd-routing-key-0000-secret"
	pdToken      = "pd-rest-token-0000-secret"
	// pdWebhookSecret signs PagerDuty's webhooks.
	pdWebhookSecret = "pd-webhook-secret-0000-example"
)

// jsmAccount is the Atlassian account of the fake JSM's REST API.
var jsmAccount = opsgenietest.JSMAccount{CloudID: "cloud-1", Email: "responder@example.com", APIToken: "atlassian-token-0000-secret"}

// vendors are the fake Slack, Zoom, OpsGenie and a real SMTP server, wired
// into a test env with the incident process of the default policy.
type vendors struct {
	slack *slacktest.Server
	zoom  *zoomtest.Server
	og    *opsgenietest.Server
	jsm   *opsgenietest.Server // Jira Service Management, beside OpsGenie during a move
	pd    *pagerdutytest.Server
	smtp  *smtptest.Server
	logs  *lockedBuffer
	// front, when set before withVendors, gives the address ("host:port")
	// the notifiers of a vendor (slack, zoom, opsgenie, email) dial instead
	// of its fake's: a proxy that can fail the way networks do.
	front func(vendor, addr string) string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// processPolicy is the default incident process: S1/S2 get a bridge, a page
// out of hours, Slack and email; S3 Slack; S4 nothing.
func processPolicy(t *testing.T, inHours bool) *policy.Policy {
	t.Helper()
	p := testPolicy(t)
	p.Process = map[policy.Severity]policy.Process{
		policy.S1: {Zoom: true, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: time.Hour, AutoResolve: true},
		policy.S2: {Zoom: true, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: time.Hour, AutoResolve: true},
		policy.S3: {Channels: []string{"slack"}, UpdateInterval: 4 * time.Hour, AutoResolve: true},
		policy.S4: {AutoResolve: true},
	}
	if inHours {
		// Every minute of every day is business hours.
		p.BusinessHours = policy.BusinessHours{Location: time.UTC, Intervals: []timeinterval.TimeInterval{{
			Times: []timeinterval.TimeRange{{StartMinute: 0, EndMinute: 1440}},
		}}}
	}
	return p
}

func withVendors(t *testing.T, v *vendors, inHours bool) envOption {
	t.Helper()
	v.slack = slacktest.New(slackToken)
	t.Cleanup(v.slack.Close)
	v.slack.AddChannel("incidents")
	v.slack.AddChannel("sev1")
	v.slack.AddChannel("customer-eng")
	v.zoom = zoomtest.New("acct", "zoom-client", zoomSecret)
	t.Cleanup(v.zoom.Close)
	v.og = opsgenietest.New(ogKey)
	t.Cleanup(v.og.Close)
	v.jsm = opsgenietest.NewJSM(jsmKey, jsmAccount)
	t.Cleanup(v.jsm.Close)
	v.pd = pagerdutytest.New(pdRoutingKey, pdToken)
	t.Cleanup(v.pd.Close)
	v.smtp = smtptest.Start(t, smtptest.WithAuth("responder", smtpPassword))
	v.logs = &lockedBuffer{}
	host, port := v.smtp.Addr()
	host, port = v.viaHostPort(t, "email", host, port)

	client := &http.Client{Timeout: 5 * time.Second}
	sn, err := slack.New(slack.Config{Token: slackToken, APIURL: v.viaURL(t, "slack", v.slack.URL()), HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	zn, err := zoom.New(zoom.Config{AccountID: "acct", ClientID: "zoom-client", ClientSecret: zoomSecret,
		TokenURL: v.viaURL(t, "zoom", v.zoom.TokenURL()), APIURL: v.viaURL(t, "zoom", v.zoom.APIURL()), HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	on, err := opsgenie.New(opsgenie.Config{APIKey: ogKey, APIURL: v.via("opsgenie", v.og.Host()), HTTPClient: client,
		Responder: opsgenie.Responder{Type: "team", Name: "sre-oncall"}})
	if err != nil {
		t.Fatal(err)
	}
	jn, err := opsgenie.NewJSM(opsgenie.JSMConfig{APIKey: jsmKey, APIURL: v.jsm.Host(), HTTPClient: client,
		Responder: opsgenie.Responder{Type: "team", Name: "sre-jsm"},
		REST:      &opsgenie.JSMREST{URL: v.jsm.URL(), CloudID: jsmAccount.CloudID, Email: jsmAccount.Email, APIToken: jsmAccount.APIToken}})
	if err != nil {
		t.Fatal(err)
	}
	pn, err := pagerduty.New(pagerduty.Config{RoutingKey: pdRoutingKey, EventsURL: v.pd.URL(), HTTPClient: client, Responder: "user:PLEAD01",
		REST: &pagerduty.REST{URL: v.pd.URL(), Token: pdToken, From: "responder@example.com", RequesterID: "PRESP01"}})
	if err != nil {
		t.Fatal(err)
	}
	en, err := email.New(email.Config{Host: host, Port: port, TLS: "none", Username: "responder", Password: smtpPassword,
		From: "Responder <responder@example.com>", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return func(s envSetup) {
		s.inc.Routes = incident.Routes{
			Log:   true,
			Slack: &incident.SlackRoutes{Channel: "#incidents", BySeverity: map[string]string{"S1": "#sev1"}, Customer: "#customer-eng"},
			Email: &incident.EmailRoutes{
				Recipients: map[string][]string{"S1": {"oncall@example.com", "sre-leads@example.com"}, "S2": {"oncall@example.com"}},
				Customer:   []string{"ce@example.com"},
				Events:     []string{integrations.EventOpened},
			},
			Zoom:   &incident.ZoomRoutes{API: true},
			Paging: &incident.PagingRoutes{Pager: "opsgenie", Responders: map[string]string{"opsgenie": "team:sre-oncall", "jsm": "team:sre-jsm", "pagerduty": "user:PLEAD01"}},
		}
		s.incDeps.Policy = processPolicy(t, inHours)
		s.deps.Log = zerolog.New(v.logs)
		*s.notifiers = append(*s.notifiers, sn, zn, on, jn, pn, en)
		s.cfg.PagerDutySecrets = []string{pdWebhookSecret}
		// Short retries keep outage tests quick; Retry-After is still exact.
		s.dispatch.BackoffBase = 50 * time.Millisecond
		s.dispatch.BackoffMax = 200 * time.Millisecond
		s.dispatch.SlackRate = 20 // the strict rate is tested on its own
		s.dispatch.SlackBurst = 1
	}
}

func TestFanoutS1OutOfHours(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false))
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	e.flush()

	roots := v.slack.Messages("sev1")
	if len(roots) != 1 {
		t.Fatalf("Slack #sev1 has %d root messages, want 1: %+v", len(roots), roots)
	}
	meetings := v.zoom.Meetings()
	if len(meetings) != 1 || meetings[0].JoinURL == "" {
		t.Fatalf("Zoom meetings %+v, want one", meetings)
	}
	if !strings.Contains(string(roots[0].Blocks), meetings[0].JoinURL) {
		t.Errorf("the announcement lacks the Zoom link %s: %s", meetings[0].JoinURL, roots[0].Blocks)
	}
	if !strings.Contains(string(roots[0].Blocks), "http://127.0.0.1:9095/incidents/"+id+"|") { // the page, not the JSON
		t.Errorf("the announcement lacks the incident URL: %s", roots[0].Blocks)
	}
	if !strings.Contains(string(roots[0].Blocks), "runbooks.example.com") {
		t.Errorf("the announcement lacks the runbook link: %s", roots[0].Blocks)
	}
	mails := v.smtp.Messages()
	if len(mails) != 1 || len(mails[0].To) != 2 {
		t.Fatalf("mails %+v, want one to the two S1 recipients", mails)
	}
	creates := v.og.Creates()
	pageAlias := "responder/127.0.0.1:9095/" + id // one alias per incident, never the group key
	if len(creates) != 1 || creates[0].Request.Alias != pageAlias || creates[0].Request.Priority != "P1" {
		t.Fatalf("OpsGenie creates %+v, want one P1 with alias %s", creates, pageAlias)
	}
	if rs := creates[0].Request.Responders; len(rs) != 1 || rs[0].Name != "sre-oncall" || rs[0].Type != "team" {
		t.Errorf("responders %+v, want team sre-oncall", rs)
	}
	inc := e.incident(id)
	if inc.ZoomURL != meetings[0].JoinURL || inc.SlackTS != roots[0].TS || inc.PagedAt == nil {
		t.Errorf("incident zoom %q slack_ts %q paged_at %v", inc.ZoomURL, inc.SlackTS, inc.PagedAt)
	}
	for _, n := range inc.Notifications {
		if n.State != store.IntentSent {
			t.Errorf("notification %s %s: %s (%s)", n.Channel, n.Event, n.State, n.LastError)
		}
	}

	// Later changes go to the thread; resolution also edits the root.
	if r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/ack", tokWrite, []byte(`{"by":"maria"}`)); r.status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	e.postAM(readTestdata(t, "am_resolved_v034.json"))
	e.flush()
	roots = v.slack.Messages("sev1")
	// Replies: the page went, the acknowledgement, the resolution, the
	// post-mortem owed. Edits: the root shows who was paged, that it was
	// acknowledged, then the resolution.
	if len(roots) != 1 || len(roots[0].Replies) != 4 || roots[0].Edits != 3 {
		t.Fatalf("after ack and resolve: %d roots, %d replies, %d edits; want 1, 4, 3", len(roots), len(roots[0].Replies), roots[0].Edits)
	}
	if !strings.Contains(roots[0].Replies[0].Text, "paged team:sre-oncall through opsgenie") ||
		!strings.Contains(roots[0].Replies[1].Text, "acknowledged by maria") || !strings.Contains(roots[0].Replies[2].Text, "resolved") {
		t.Errorf("replies %q / %q / %q", roots[0].Replies[0].Text, roots[0].Replies[1].Text, roots[0].Replies[2].Text)
	}
	if !strings.Contains(string(roots[0].Blocks), "team:sre-oncall through opsgenie: paged at") {
		t.Errorf("the root does not say who was paged: %s", roots[0].Blocks)
	}
	if closes := v.og.Closes(); len(closes) != 1 || closes[0].Identifier != pageAlias {
		t.Errorf("OpsGenie closes %+v, want one for the alias", closes)
	}
	// The acknowledgement in Responder reached the alert that paged, which
	// the incident records.
	if acks := v.og.Acknowledges(); len(acks) != 1 || acks[0].Identifier != pageAlias || acks[0].User != "maria" {
		t.Errorf("OpsGenie acknowledgements %+v, want one by maria for the alias", acks)
	}
	if inc := e.incident(id); inc.PagedVia != integrations.ChannelOpsGenie || !inc.PagerAlert {
		t.Errorf("paged_via %q, pager_alert %v", inc.PagedVia, inc.PagerAlert)
	}
	if n := len(v.og.Creates()); n != 1 {
		t.Errorf("%d OpsGenie creates, want still 1: never page twice", n)
	}
	if n := len(v.smtp.Messages()); n != 1 {
		t.Errorf("%d mails, want 1 (only opened is mailed)", n)
	}
	checkNoSecrets(t, e, &v)
}

// checkNoSecrets: no token, key, password or secret in the daemon's log or
// in any notification's last error.
func checkNoSecrets(t *testing.T, e *testEnv, v *vendors) {
	t.Helper()
	var errs strings.Builder
	for _, inc := range e.list("?limit=500") {
		for _, n := range e.incident(inc.ID).Notifications {
			errs.WriteString(n.LastError + "\n")
		}
	}
	for _, secret := range []string{slackToken, ogKey, zoomSecret, smtpPassword, jsmKey, jsmAccount.APIToken, pdRoutingKey, pdToken, pdWebhookSecret} {
		if strings.Contains(v.logs.String(), secret) {
			t.Errorf("the log contains a secret (%s…)", secret[:6])
		}
		if strings.Contains(errs.String(), secret) {
			t.Errorf("a notification error contains a secret (%s…)", secret[:6])
		}
	}
}

func TestFanoutInBusinessHoursPagesNobody(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	e.postAM(readTestdata(t, "am_resolved_v034.json"))
	e.flush()
	if reqs := v.og.Requests(); len(reqs) != 0 {
		t.Errorf("OpsGenie got %d requests in business hours, want none", len(reqs))
	}
	if inc := e.incident(id); inc.PagedAt != nil || inc.OutOfHours {
		t.Errorf("paged_at %v out_of_hours %v", inc.PagedAt, inc.OutOfHours)
	}
	if n := len(v.slack.Messages("sev1")); n != 1 {
		t.Errorf("%d Slack roots, want 1", n)
	}
}

func TestFanoutS3SlackOnly(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false))
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	e.flush()
	if roots := v.slack.Messages("incidents"); len(roots) != 1 {
		t.Fatalf("%d roots in #incidents, want 1", len(roots))
	}
	if n := len(v.smtp.Messages()) + len(v.zoom.Meetings()) + len(v.og.Requests()); n != 0 {
		t.Errorf("an S3 reached email, Zoom or OpsGenie (%d requests)", n)
	}
	if inc := e.incident(id); inc.ZoomURL != "" || inc.PagedAt != nil {
		t.Errorf("S3 zoom %q paged %v", inc.ZoomURL, inc.PagedAt)
	}
}

func TestFanoutCustomerImpact(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(`{"title":"Checkout down","severity":"S2","customer_impact":true}`))
	if r.status != http.StatusCreated {
		t.Fatalf("declare: %d %s", r.status, r.body)
	}
	e.flush()
	if roots := v.slack.Messages("customer-eng"); len(roots) != 1 {
		t.Errorf("%d messages to customer engineering's channel, want 1", len(roots))
	}
	var toCE int
	for _, m := range v.smtp.Messages() {
		if len(m.To) == 1 && m.To[0] == "ce@example.com" {
			toCE++
		}
	}
	if toCE != 1 {
		t.Errorf("%d mails to customer engineering, want 1", toCE)
	}
}

// Slack down for a while: every message arrives once it recovers, none twice.
func TestFanoutSlackOutage(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	v.slack.FailNext(4, http.StatusServiceUnavailable)
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	e.do(http.MethodPost, "/api/v1/incidents/"+id+"/ack", tokWrite, []byte(`{"by":"dev"}`))
	e.flush()
	roots := v.slack.Messages("incidents")
	if len(roots) != 1 || len(roots[0].Replies) != 1 {
		t.Fatalf("after the outage: %d roots, replies %+v; want the root and one reply", len(roots), roots)
	}
	// The root, the acknowledgement in the thread, and the root's edit
	// showing it acknowledged.
	if posts := v.slack.Posts(); len(posts) != 3 {
		t.Errorf("%d accepted posts, want 3 (none repeated)", len(posts))
	}
	inc := e.incident(id)
	for _, n := range inc.Notifications {
		if n.Channel == "slack" && n.Event == "opened" && (n.State != store.IntentSent || n.Attempts != 5) {
			t.Errorf("root intent: %s after %d attempts, want sent after 5", n.State, n.Attempts)
		}
	}
}

// A 429 with Retry-After: 2 is honoured exactly: no attempt sooner.
func TestFanoutSlackRetryAfter(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	v.slack.RateLimitNext(1, 2)
	start := time.Now()
	e.postAM(readTestdata(t, "am_firing_old.json"))
	e.flush()
	posts := v.slack.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	if wait := posts[0].At.Sub(start); wait < 2*time.Second {
		t.Errorf("retried after %s, sooner than Retry-After: 2", wait)
	}
}

// A 400 is not retried: the intent shows failed after one attempt.
func TestFanoutPermanentFailure(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	v.slack.FailNext(1, http.StatusBadRequest)
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	e.flush()
	inc := e.incident(id)
	var root *store.Intent
	for i := range inc.Notifications {
		if inc.Notifications[i].Channel == "slack" {
			root = &inc.Notifications[i]
		}
	}
	if root == nil || root.State != store.IntentFailed || root.Attempts != 1 || root.LastError == "" {
		t.Fatalf("slack intent %+v, want failed after 1 attempt with its error", root)
	}
	if reqs := v.slack.Requests(); reqs != 1 {
		t.Errorf("%d Slack requests, want 1", reqs)
	}
	var failedEntry bool
	for _, en := range inc.Timeline {
		failedEntry = failedEntry || (en.Kind == store.KindNotification && strings.Contains(en.Text, "failed"))
	}
	if !failedEntry {
		t.Errorf("the timeline does not show the failed delivery: %v", kinds(inc.Timeline))
	}
	checkNoSecrets(t, e, &v)
}

// Intents pending when the dispatcher stops are delivered once after a
// restart: the store is closed and reopened, with a new dispatcher.
func TestFanoutRestartDeliversPendingOnce(t *testing.T) {
	var v vendors
	opt := withVendors(t, &v, true)
	e := newEnv(t, opt, withoutDispatcher())
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	e.do(http.MethodPost, "/api/v1/incidents/"+id+"/ack", tokWrite, []byte(`{"by":"dev"}`))
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := v.slack.Requests(); n != 0 {
		t.Fatalf("%d Slack requests before any dispatcher ran", n)
	}

	// The restarted daemon: same file, a new store and dispatcher.
	e2 := reopenEnv(t, e, opt)
	e2.flush()
	roots := v.slack.Messages("incidents")
	if len(roots) != 1 || len(roots[0].Replies) != 1 || roots[0].Edits != 1 || len(v.slack.Posts()) != 3 {
		t.Fatalf("after restart: roots %+v, posts %d; want one root with one reply, edited once", roots, len(v.slack.Posts()))
	}
	// And once more: nothing is delivered again.
	e3 := reopenEnv(t, e2, opt)
	e3.flush()
	e3.stopDispatcher() // waits for any delivery in flight
	if n := len(v.slack.Posts()); n != 3 {
		t.Errorf("%d posts after a second restart, want still 3", n)
	}
}

// A storm of alerts joining one incident gives a handful of Slack
// messages, not one per alert. The storm is queued before the dispatcher
// starts, so what is collapsed does not depend on how fast this machine
// posts the webhooks: the root, then the 499 joined alerts in replies of
// at most collapse_max (100) each.
func TestFanoutStormCollapses(t *testing.T) {
	var v vendors
	fast := func(s envSetup) { s.dispatch.SlackRate = 20 }
	queued := newEnv(t, withVendors(t, &v, true), fast, withoutDispatcher())
	const alerts = 500
	for i := range alerts {
		queued.postAM(amPayload(t, "am_firing_old.json", func(m *incident.AlertmanagerWebhook) {
			m.Alerts[0].Fingerprint = fmt.Sprintf("%016x", i+1)
			m.Alerts[0].Labels["instance"] = fmt.Sprintf("db-%d", i)
		}))
	}
	// The fake refuses (429) any message to a channel sooner than 45ms
	// after the previous one: the dispatcher's pacing (20 a second) must
	// keep clear of it.
	v.slack.StrictRate(45 * time.Millisecond)
	e := reopenEnv(t, queued, withVendors(t, &v, true), fast)
	e.flush()
	roots := v.slack.Messages("incidents")
	if len(roots) != 1 {
		t.Fatalf("%d roots, want 1", len(roots))
	}
	if posts := len(v.slack.Posts()); posts != 6 {
		t.Errorf("%d Slack messages for %d alerts, want 6: the root and 5 replies of at most 100 joined alerts", posts, alerts)
	}
	if reqs := v.slack.Requests(); reqs != len(v.slack.Posts()) {
		t.Errorf("%d Slack requests for %d accepted posts: the pacing ran into the rate limit", reqs, len(v.slack.Posts()))
	}
	if len(roots[0].Replies) != 5 {
		t.Errorf("%d replies, want 5: %+v", len(roots[0].Replies), roots[0].Replies)
	}
	carried := 0
	for _, r := range roots[0].Replies {
		if !strings.Contains(r.Text, "joined") {
			t.Errorf("reply %q does not say alerts joined", r.Text)
		}
		// Each reply carries the key of every delivery it stands for, so
		// that each is found after a crash or a restore.
		if r.Metadata == nil || r.Metadata.EventPayload["key"] == nil {
			t.Fatalf("reply without its key: %+v", r.Metadata)
		}
		covers, _ := r.Metadata.EventPayload["covers"].(string)
		carried += 1 + len(strings.Split(covers, ","))
	}
	if carried != alerts-1 {
		t.Errorf("the replies carry the keys of %d deliveries, want the %d joined alerts'", carried, alerts-1)
	}
}

// withoutDispatcher leaves intents queued in the store, as a daemon killed
// before delivering them would.
func withoutDispatcher() envOption {
	return func(s envSetup) { s.deps.Outbox = noOutbox{} }
}

type noOutbox struct{}

func (noOutbox) Kick()         {}
func (noOutbox) Running() bool { return true }

// reopenEnv opens e's store file again with a fresh server and dispatcher,
// as a restarted daemon would.
func reopenEnv(t *testing.T, e *testEnv, opts ...envOption) *testEnv {
	t.Helper()
	e.stopDispatcher()
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	opts = append(opts, func(s envSetup) { *s.path = e.path })
	return newEnv(t, opts...)
}

// Zoom down: the announcement goes without the link after a short wait,
// and the link follows in the thread once the meeting exists.
func TestFanoutZoomOutageDoesNotHoldTheAnnouncement(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true), func(s envSetup) { s.dispatch.DependencyWait = 50 * time.Millisecond })
	v.zoom.FailNext(5, http.StatusServiceUnavailable)
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	e.flush()
	roots := v.slack.Messages("sev1")
	meetings := v.zoom.Meetings()
	if len(roots) != 1 || len(meetings) == 0 || meetings[len(meetings)-1].JoinURL == "" {
		t.Fatalf("roots %d, meetings %+v", len(roots), meetings)
	}
	link := meetings[len(meetings)-1].JoinURL
	if strings.Contains(string(roots[0].Blocks), link) {
		t.Fatalf("the announcement waited for Zoom's outage to end")
	}
	if len(roots[0].Replies) != 1 || !strings.Contains(roots[0].Replies[0].Text, link) {
		t.Errorf("replies %+v, want the Zoom link in the thread", roots[0].Replies)
	}
	if inc := e.incident(id); inc.ZoomURL != link {
		t.Errorf("zoom_url %q, want %q", inc.ZoomURL, link)
	}
}

// An S3 raised to S1 out of hours gets what an S1 gets: a bridge, the S1
// list mailed, a page; its Slack thread hears about it.
func TestFanoutRaiseToS1(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false))
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	e.flush()
	if n := len(v.og.Requests()) + len(v.smtp.Messages()) + len(v.zoom.Meetings()); n != 0 {
		t.Fatalf("an S3 reached OpsGenie, email or Zoom (%d)", n)
	}
	e.postAM(amPayload(t, "am_firing_old.json", func(m *incident.AlertmanagerWebhook) {
		m.Alerts[0].Fingerprint = "00000000000000c1"
		m.Alerts[0].Labels = map[string]string{"alertname": "DiskFillingUp", "severity": "critical", "env": "production", "instance": "db-1"}
	}))
	e.flush()
	inc := e.incident(id)
	if inc.Severity != "S1" || inc.ZoomURL == "" || inc.PagedAt == nil {
		t.Fatalf("after the raise: severity %s zoom %q paged %v", inc.Severity, inc.ZoomURL, inc.PagedAt)
	}
	if len(v.og.Creates()) != 1 || len(v.zoom.Meetings()) != 1 {
		t.Errorf("creates %d meetings %d, want 1 and 1", len(v.og.Creates()), len(v.zoom.Meetings()))
	}
	if mails := v.smtp.Messages(); len(mails) != 1 || len(mails[0].To) != 2 {
		t.Errorf("mails %+v, want one to the S1 list", mails)
	}
	roots := v.slack.Messages("incidents")
	if len(roots) != 1 || len(roots[0].Replies) < 2 {
		t.Fatalf("roots %+v, want the S3 root with replies about the raise", roots)
	}
}

// An incident from OpsGenie: the responder is added to that alert; no alert
// is created, and its close stays OpsGenie's.
func TestFanoutOpsGenieSourcedAddsResponder(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false))
	id := e.postOG(readTestdata(t, "og_create.json"))[0].ID
	e.flush() // the page goes before the close (one queued at the close would be cancelled)
	e.postOG(readTestdata(t, "og_acknowledge.json"))
	e.doWant(http.MethodPost, "/api/v1/incidents/"+id+"/notes", tokWrite, `{"text":"looking","by":"maria"}`, http.StatusCreated)
	e.postOG(readTestdata(t, "og_close.json"))
	e.flush()
	adds := v.og.AddResponders()
	if len(adds) != 1 || adds[0].Identifier != "checkout-api-latency" || adds[0].IdentifierType != "alias" {
		t.Fatalf("add-responders %+v, want one by alias checkout-api-latency", adds)
	}
	if n := len(v.og.Creates()) + len(v.og.Closes()) + len(v.og.Acknowledges()); n != 0 {
		t.Errorf("%d creates, closes or acknowledgements for an OpsGenie alert of its own", n)
	}
	if inc := e.incident(id); inc.PagedAt == nil {
		t.Errorf("paged_at not set")
	}
}

// Customer engineering hears how it goes on, not only that it began: the
// ETA when one is given, and the resolution, in their channel and their
// mail. An incident that does not affect customers tells them nothing.
func TestFanoutCustomerEngineeringHearsTheEnd(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	var affected, internal view
	e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"Checkout down","severity":"S2","customer_impact":true}`, http.StatusCreated).json(t, &affected)
	e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"CI runners slow","severity":"S2"}`, http.StatusCreated).json(t, &internal)
	eta := e.clock().Add(time.Hour).Format(time.RFC3339)
	for _, id := range []string{affected.ID, internal.ID} {
		e.doWant(http.MethodPost, "/api/v1/incidents/"+id+"/updates", tokWrite, `{"text":"failing over","eta":"`+eta+`","by":"dev"}`, http.StatusCreated)
		e.doWant(http.MethodPost, "/api/v1/incidents/"+id+"/resolve", tokWrite, `{"by":"dev","summary":"failed over to eu-west-2"}`, http.StatusOK)
	}
	e.flush()
	var posts []string
	for _, m := range v.slack.Messages("customer-eng") {
		posts = append(posts, string(m.Blocks))
	}
	all := strings.Join(posts, "\n")
	if len(posts) != 3 || !strings.Contains(all, "Expected recovery: "+e.clock().Add(time.Hour).Format("2006-01-02 15:04 UTC")) ||
		!strings.Contains(all, "Resolved: failed over to eu-west-2") || strings.Contains(all, "CI runners") {
		t.Errorf("customer engineering's channel got %d posts, want the opening, the ETA and the resolution of %s only:\n%s", len(posts), affected.ID, all)
	}
	var subjects []string
	for _, m := range v.smtp.Messages() {
		if len(m.To) == 1 && m.To[0] == "ce@example.com" && m.Header != nil {
			subjects = append(subjects, m.Header.Get("Subject"))
		}
	}
	if len(subjects) != 3 || !strings.Contains(strings.Join(subjects, "\n"), "resolved") {
		t.Errorf("customer engineering's mails: %q, want 3, the last about the resolution", subjects)
	}
}

// The person woken up gets the bridge: the page waits (briefly) for the
// meeting asked for with it and carries its link; when Zoom is slower than
// that wait, the page goes without, and the link follows as a note on the
// alert once the meeting exists.
func TestFanoutThePagedPersonGetsTheBridge(t *testing.T) {
	for _, slowZoom := range []bool{false, true} {
		t.Run(fmt.Sprintf("slow zoom %v", slowZoom), func(t *testing.T) {
			var v vendors
			e := newEnv(t, withVendors(t, &v, false), func(s envSetup) { s.dispatch.DependencyWait = 50 * time.Millisecond })
			if slowZoom {
				v.zoom.FailNext(5, http.StatusServiceUnavailable)
			}
			id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
			e.flush()
			link := e.incident(id).ZoomURL
			creates, notes := v.og.Creates(), v.og.Notes()
			if link == "" || len(creates) != 1 {
				t.Fatalf("zoom_url %q, %d alerts created, want a bridge and one page", link, len(creates))
			}
			inPage := strings.Contains(creates[0].Request.Description, link)
			noted := len(notes) == 1 && strings.Contains(notes[0].Note, link) && notes[0].Identifier == creates[0].Request.Alias
			switch {
			case !slowZoom && (!inPage || len(notes) != 0):
				t.Errorf("bridge in time: link in the page %v, notes %+v; want the link in the page and no note", inPage, notes)
			case slowZoom && (inPage || !noted):
				t.Errorf("slow bridge: link in the page %v, notes %+v; want the page without it, then a note with it", inPage, notes)
			}
		})
	}
}

// Raised to a severity routed to another channel, the incident is posted
// there too, with a link to its thread, where the conversation goes on;
// out of business hours the raise pages.
func TestFanoutRaiseMovesTheConversation(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false))
	var inc view
	e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"Search is slow","severity":"S3"}`, http.StatusCreated).json(t, &inc)
	e.flush()
	if roots := v.slack.Messages("incidents"); len(roots) != 1 {
		t.Fatalf("%d roots in #incidents, want the S3 announcement", len(roots))
	}
	e.doWant(http.MethodPut, "/api/v1/incidents/"+inc.ID+"/severity", tokWrite, `{"severity":"S1","reason":"checkout is down too","by":"maria"}`, http.StatusOK)
	e.flush()
	thread := v.slack.Messages("incidents")[0]
	sev1 := v.slack.Messages("sev1")
	if len(sev1) != 1 {
		t.Fatalf("%d posts in #sev1, want one pointing at the thread", len(sev1))
	}
	blocks := string(sev1[0].Blocks)
	if !strings.Contains(blocks, "severity raised from S3 to S1: checkout is down too") ||
		!strings.Contains(blocks, "/p"+strings.ReplaceAll(thread.TS, ".", "")+"|Join the conversation in the incident's thread") {
		t.Errorf("#sev1's post does not point at the thread %s: %s", thread.TS, blocks)
	}
	if got := e.incident(inc.ID); got.SlackTS != thread.TS {
		t.Errorf("the incident's thread moved to %s, want it to stay %s", got.SlackTS, thread.TS)
	}
	if len(v.og.Creates()) != 1 {
		t.Errorf("%d pages, want the out-of-hours raise to S1 to page", len(v.og.Creates()))
	}
}

// An incident resolved before its page went: the page is cancelled (said
// in the timeline), and nothing reaches the pager, neither the page nor a
// close for it. One resolved after its page went gets the close.
func TestFanoutPageCancelledWhenResolvedFirst(t *testing.T) {
	var v vendors
	opt := withVendors(t, &v, false)
	e := newEnv(t, opt, withoutDispatcher())
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	e.postAM(readTestdata(t, "am_resolved_v034.json"))
	inc := e.incident(id)
	if inc.Status != store.StatusResolved || !timelineHas(inc, store.KindAction, "cancelled: "+id+" was resolved before it went") {
		t.Fatalf("after a resolution before the page went: %s, timeline %+v", inc.Status, inc.Timeline)
	}
	e2 := reopenEnv(t, e, opt)
	e2.flush()
	if n := len(v.og.Creates()) + len(v.og.Closes()) + len(v.og.Acknowledges()); n != 0 {
		t.Errorf("%d calls reached OpsGenie for a page cancelled before it went", n)
	}
	var states []string
	for _, n := range e2.incident(id).Notifications {
		if n.Channel == integrations.ChannelOpsGenie {
			states = append(states, n.Event+" "+n.State)
		}
	}
	if strings.Join(states, ", ") != "page cancelled" {
		t.Errorf("pager notifications %v, want only the page, cancelled", states)
	}
}

// The pager the routes choose pages, with the bridge; acknowledging and
// resolving reach the pager that paged (paged_via) even after the routes
// moved to another pager, as in a cutover from OpsGenie to JSM.
func TestFanoutPagesThroughTheRoutedPagerAndClosesWhereItPaged(t *testing.T) {
	var v vendors
	opt := withVendors(t, &v, false)
	route := func(pager string) envOption {
		return func(s envSetup) { s.inc.Routes.Paging.Pager = pager }
	}
	e := newEnv(t, opt, route(integrations.ChannelJSM))
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	e.flush()
	creates := v.jsm.Creates()
	if len(creates) != 1 || len(v.og.Creates()) != 0 {
		t.Fatalf("JSM creates %d, OpsGenie creates %d; want one page through JSM", len(creates), len(v.og.Creates()))
	}
	inc := e.incident(id)
	if !strings.Contains(creates[0].Request.Description, inc.ZoomURL) || inc.ZoomURL == "" {
		t.Errorf("the JSM alert lacks the bridge %q:\n%s", inc.ZoomURL, creates[0].Request.Description)
	}
	if rs := creates[0].Request.Responders; len(rs) != 1 || rs[0].Name != "sre-jsm" {
		t.Errorf("responders %+v, want JSM's configured team", rs)
	}
	if inc.PagedVia != integrations.ChannelJSM {
		t.Errorf("paged_via %q", inc.PagedVia)
	}

	// The cutover goes back to OpsGenie; this incident stays with JSM.
	e2 := reopenEnv(t, e, opt, route(integrations.ChannelOpsGenie))
	e2.doWant(http.MethodPost, "/api/v1/incidents/"+id+"/ack", tokWrite, `{"by":"maria"}`, http.StatusOK)
	e2.doWant(http.MethodPost, "/api/v1/incidents/"+id+"/page", tokWrite, `{"responder":"user:lead@example.com","reason":"decide on failover","by":"maria"}`, http.StatusOK)
	e2.flush() // (a page still queued at the resolution would be cancelled)
	e2.doWant(http.MethodPost, "/api/v1/incidents/"+id+"/resolve", tokWrite, `{"by":"maria"}`, http.StatusOK)
	e2.flush()
	alias := creates[0].Request.Alias
	if acks, closes := v.jsm.Acknowledges(), v.jsm.Closes(); len(acks) != 1 || len(closes) != 1 || acks[0].Identifier != alias || closes[0].Identifier != alias {
		t.Errorf("JSM acks %+v, closes %+v; want one each for %s", acks, closes, alias)
	}
	if a, ok := v.jsm.Alert(alias); !ok || !slices.ContainsFunc(a.Responders, func(r opsgenietest.Responder) bool { return r.Username == "lead@example.com" }) {
		t.Errorf("the lead was not added to the JSM alert: %+v", a)
	}
	if n := len(v.og.Creates()) + len(v.og.Acknowledges()) + len(v.og.Closes()) + len(v.og.AddResponders()); n != 0 {
		t.Errorf("%d calls went to OpsGenie for an incident JSM paged", n)
	}
}

// An incident from JSM's outgoing webhook (OpsGenie's shape) is JSM's:
// out of hours the responder is added to JSM's own alert (through its REST
// API, by alias), nothing is created elsewhere, and its close stays JSM's.
func TestFanoutJSMSourcedAddsResponderOnJSMsAlert(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false)) // the routes' default pager is OpsGenie
	res := e.postWebhook("/api/v1/alerts/jsm", readTestdata(t, "og_create.json"))
	id := res[0].ID
	e.flush() // the page goes before the close (one queued at the close would be cancelled)
	e.postWebhook("/api/v1/alerts/jsm", readTestdata(t, "og_close.json"))
	e.flush()
	inc := e.incident(id)
	if inc.Source != store.SourceJSM || inc.Status != store.StatusResolved {
		t.Fatalf("incident %s from JSM: source %s, status %s", id, inc.Source, inc.Status)
	}
	adds := v.jsm.AddResponders()
	if len(adds) != 1 || adds[0].Identifier != "checkout-api-latency" || adds[0].IdentifierType != "alias" || adds[0].Responder.Name != "sre-jsm" {
		t.Fatalf("JSM add-responders %+v, want team sre-jsm on alias checkout-api-latency", adds)
	}
	if n := len(v.jsm.Creates()) + len(v.jsm.Closes()) + len(v.og.Creates()) + len(v.og.AddResponders()) + len(v.og.Closes()); n != 0 {
		t.Errorf("%d other pager calls for an alert of JSM's own", n)
	}
	if !timelineHas(inc, store.KindResolved, "closed in JSM") {
		t.Errorf("timeline %+v", inc.Timeline)
	}
}
