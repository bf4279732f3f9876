package configs

import (
	"fmt"
	"maps"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/responder-sre/responder/integrations/email"
	"github.com/responder-sre/responder/integrations/opsgenie"
	"github.com/responder-sre/responder/integrations/pagerduty"
	"github.com/responder-sre/responder/integrations/slack"
	"github.com/responder-sre/responder/integrations/zoom"
	"github.com/responder-sre/responder/policy"
)

// Defaults of the notification settings.
const (
	DefaultSlackAPIURL   = "https://slack.com/api/"
	DefaultZoomTokenURL  = "https://zoom.us/oauth/token" //nolint:gosec // a URL, not a credential
	DefaultZoomAPIURL    = "https://api.zoom.us/v2"
	DefaultOpsGenieHost  = "api.opsgenie.com"
	DefaultJSMHost       = "api.atlassian.com"
	DefaultJSMRESTURL    = "https://api.atlassian.com"
	DefaultPDEventsURL   = "https://events.pagerduty.com"
	DefaultPDRESTURL     = "https://api.pagerduty.com"
	DefaultNotifyMaxAge  = 24 * time.Hour
	DefaultNotifyTimeout = 30 * time.Second
)

// Events that can be mailed (notifications.email.events).
var mailableEvents = map[string]bool{
	"opened": true, "alert_joined": true, "severity_raised": true, "acknowledged": true,
	"reopened": true, "note": true, "resolved": true, "update": true, "roles": true, "reminder": true,
}

var responderTypes = map[string]bool{"user": true, "team": true, "escalation": true, "schedule": true}

func (n *NotificationsConfig) applyDefaults() {
	setDefault(&n.MaxAge, DefaultNotifyMaxAge)
	setDefault(&n.RetryBase, time.Second)
	setDefault(&n.RetryMax, 60*time.Second)
	setDefault(&n.Concurrency, 4)
	setDefault(&n.Timeout, DefaultNotifyTimeout)
	if s := n.Slack; s != nil {
		setDefault(&s.APIURL, DefaultSlackAPIURL)
		setDefault(&s.RatePerSecond, 1)
		setDefault(&s.Burst, 1)
		if i := s.Interactivity; i != nil {
			setDefault(&i.Command, "/incident")
		}
	}
	if e := n.Email; e != nil {
		setDefault(&e.TLS, "mandatory")
		setDefault(&e.Timeout, 15*time.Second)
		if e.Events == nil {
			e.Events = []string{"opened"}
		}
	}
	if z := n.Zoom; z != nil && z.API != nil {
		setDefault(&z.API.TokenURL, DefaultZoomTokenURL)
		setDefault(&z.API.APIURL, DefaultZoomAPIURL)
		setDefault(&z.API.User, "me")
	}
	if o := n.OpsGenie; o != nil {
		setDefault(&o.APIURL, DefaultOpsGenieHost)
	}
	if p := n.PagerDuty; p != nil {
		setDefault(&p.EventsURL, DefaultPDEventsURL)
		if p.REST != nil {
			setDefault(&p.REST.URL, DefaultPDRESTURL)
		}
	}
	if j := n.JSM; j != nil {
		setDefault(&j.APIURL, DefaultJSMHost)
		if j.REST != nil {
			setDefault(&j.REST.URL, DefaultJSMRESTURL)
		}
	}
}

func (n *NotificationsConfig) validate(p *Problems) {
	const path = "notifications"
	positive(p, path+".max_age", n.MaxAge)
	positive(p, path+".retry_base", n.RetryBase)
	positive(p, path+".retry_max", n.RetryMax)
	positive(p, path+".timeout", n.Timeout)
	if n.RetryMax < n.RetryBase {
		p.addf(path+".retry_max", "%s is shorter than retry_base %s", n.RetryMax, n.RetryBase)
	}
	if n.Concurrency < 1 {
		p.addf(path+".concurrency", "must be at least 1, got %d", n.Concurrency)
	}
	// Each section is checked here, with its paths, and then by the vendor
	// package's own constructor (no network), so that check-config applies
	// exactly the rules serve will.
	if s := n.Slack; s != nil && sectionOK(p, func(p *Problems) { s.validate(p, path+".slack") }) {
		_, err := slack.New(s.Build(nil))
		vendorProblems(p, path+".slack", err)
	}
	if e := n.Email; e != nil && sectionOK(p, func(p *Problems) { e.validate(p, path+".email") }) {
		_, err := email.New(e.Build())
		vendorProblems(p, path+".email", err)
	}
	if z := n.Zoom; z != nil && sectionOK(p, func(p *Problems) { z.validate(p, path+".zoom") }) && z.API != nil {
		_, err := zoom.New(z.API.Build(nil))
		vendorProblems(p, path+".zoom.api", err)
	}
	if o := n.OpsGenie; o != nil && sectionOK(p, func(p *Problems) { o.validate(p, path+".opsgenie") }) {
		_, err := opsgenie.New(o.Build(nil))
		vendorProblems(p, path+".opsgenie", err)
	}
	if j := n.JSM; j != nil && sectionOK(p, func(p *Problems) { j.validate(p, path+".jsm") }) {
		_, err := opsgenie.NewJSM(j.Build(nil))
		vendorProblems(p, path+".jsm", err)
	}
	if d := n.PagerDuty; d != nil && sectionOK(p, func(p *Problems) { d.validate(p, path+".pagerduty") }) {
		_, err := pagerduty.New(d.Build(nil))
		vendorProblems(p, path+".pagerduty", err)
	}
	n.validatePaging(p, path+".paging")
}

// Pagers are the names of the pagers configured, in a fixed order.
func (n *NotificationsConfig) Pagers() []string {
	var out []string
	if n.OpsGenie != nil {
		out = append(out, "opsgenie")
	}
	if n.JSM != nil {
		out = append(out, "jsm")
	}
	if n.PagerDuty != nil {
		out = append(out, "pagerduty")
	}
	return out
}

// DefaultPager is the pager that pages when no team or severity route
// names one: paging.pager, else the only pager configured.
func (n *NotificationsConfig) DefaultPager() string {
	if n.Paging.Pager != "" {
		return n.Paging.Pager
	}
	if ps := n.Pagers(); len(ps) == 1 {
		return ps[0]
	}
	return ""
}

func (n *NotificationsConfig) validatePaging(p *Problems, path string) {
	pagers := n.Pagers()
	known := func(at, name string) {
		if !slices.Contains(pagers, name) {
			if len(pagers) == 0 {
				p.addf(at, "%q: no pager is configured (notifications.opsgenie, jsm or pagerduty)", name)
				return
			}
			p.addf(at, "%q is not a configured pager: want one of %s", name, strings.Join(pagers, ", "))
		}
	}
	pg := n.Paging
	if pg.Pager != "" {
		known(path+".pager", pg.Pager)
	} else if len(pagers) > 1 {
		p.addf(path+".pager", "required with more than one pager configured (%s): the pager that pages by default", strings.Join(pagers, ", "))
	}
	for _, team := range slices.Sorted(maps.Keys(pg.TeamPagers)) {
		known(path+".team_pagers."+team, pg.TeamPagers[team])
	}
	checkSeverityKeys(p, path+".severity_pagers", pg.SeverityPagers)
	for _, sev := range slices.Sorted(maps.Keys(pg.SeverityPagers)) {
		known(path+".severity_pagers."+sev, pg.SeverityPagers[sev])
	}
}

// sectionOK runs check and reports whether it found no problem.
func sectionOK(p *Problems, check func(*Problems)) bool {
	before := len(*p)
	check(p)
	return len(*p) == before
}

// vendorProblems adds a vendor constructor's error, one problem per line;
// a line starting with "field: " is put under that field's path.
func vendorProblems(p *Problems, path string, err error) {
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if field, msg, ok := strings.Cut(line, ": "); ok && !strings.ContainsAny(field, " :") {
			p.addf(path+"."+field, "%s", msg)
			continue
		}
		p.addf(path, "%s", line)
	}
}

// Build is the Slack notifier's configuration.
func (s *SlackConfig) Build(client *http.Client) slack.Config {
	return slack.Config{Token: s.Token.Value(), APIURL: s.APIURL, HTTPClient: client}
}

// Build is the email notifier's configuration.
func (e *EmailConfig) Build() email.Config {
	return email.Config{
		Host: e.Host, Port: e.Port, TLS: e.TLS, Username: e.Username, Password: e.Password.Value(),
		From: e.From, HelloName: e.HelloName, Timeout: e.Timeout, CustomerTemplate: e.CustomerEngineering.Template,
	}
}

// Build is the Zoom notifier's configuration.
func (a *ZoomAPIConfig) Build(client *http.Client) zoom.Config {
	return zoom.Config{
		AccountID: a.AccountID, ClientID: a.ClientID, ClientSecret: a.ClientSecret.Value(),
		TokenURL: a.TokenURL, APIURL: a.APIURL, User: a.User, HTTPClient: client,
	}
}

// Build is the OpsGenie notifier's configuration.
func (o *OpsGenieConfig) Build(client *http.Client) opsgenie.Config {
	return opsgenie.Config{
		APIKey: o.APIKey.Value(), APIURL: o.APIURL, HTTPClient: client,
		Responder: opsgenie.Responder{Type: o.Responder.Type, Name: o.Responder.Name, ID: o.Responder.ID},
	}
}

func (s *SlackConfig) validate(p *Problems, path string) {
	resolveSecret(p, path, "token", &s.Token, s.TokenFile, &s.tokenFromFile, true)
	checkURL(p, path+".api_url", s.APIURL)
	if !strings.HasSuffix(s.APIURL, "/") {
		p.addf(path+".api_url", "%q must end with a slash", s.APIURL)
	}
	if strings.TrimSpace(s.Channel) == "" {
		p.addf(path+".channel", "required: the channel announcements go to when no severity or team channel applies")
	}
	checkSeverityKeys(p, path+".severity_channels", s.SeverityChannels)
	for _, sev := range slices.Sorted(maps.Keys(s.SeverityChannels)) {
		if strings.TrimSpace(s.SeverityChannels[sev]) == "" {
			p.addf(path+".severity_channels."+sev, "must name a channel")
		}
	}
	for _, team := range slices.Sorted(maps.Keys(s.TeamChannels)) {
		if strings.TrimSpace(s.TeamChannels[team]) == "" {
			p.addf(path+".team_channels."+team, "must name a channel")
		}
	}
	if s.RatePerSecond <= 0 || s.RatePerSecond > 10 {
		p.addf(path+".rate_per_second", "must be above 0 and at most 10 (Slack allows about 1 message per second per channel), got %v", s.RatePerSecond)
	}
	if s.Burst < 1 || s.Burst > 10 {
		p.addf(path+".burst", "must be 1 to 10, got %d", s.Burst)
	}
	if i := s.Interactivity; i != nil {
		i.validate(p, path+".interactivity")
	}
}

// Slack's ID shapes: a workspace (T...), a channel (C... or G...), a user
// group (S...).
var (
	slackTeamID    = regexp.MustCompile(`^T[A-Z0-9]{2,}$`)
	slackChannelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	slackGroupID   = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

func (i *SlackInteractivity) validate(p *Problems, path string) {
	switch i.Mode {
	case "socket":
		resolveSecret(p, path, "app_token", &i.AppToken, i.AppTokenFile, &i.appTokenFromFile, true)
		if i.AppToken != "" && !strings.HasPrefix(i.AppToken.Value(), "xapp-") {
			p.addf(path+".app_token", "is not an app-level token (xapp-...): create one with connections:write under Basic Information")
		}
	case "http":
		resolveSecret(p, path, "signing_secret", &i.SigningSecret, i.SigningSecretFile, &i.secretFromFile, true)
	default:
		p.addf(path+".mode", "%q: want socket (Responder connects out; no ingress) or http (Slack posts to the request URLs)", i.Mode)
	}
	if !strings.HasPrefix(i.Command, "/") || strings.ContainsAny(i.Command, " \t") || len(i.Command) < 2 {
		p.addf(path+".command", "%q: a slash command's name, such as /incident", i.Command)
	}
	if len(i.AllowedTeams) == 0 {
		p.addf(path+".allowed_teams", "required: the workspace IDs (T...) whose users may act; anyone else is refused")
	}
	for j, id := range i.AllowedTeams {
		if !slackTeamID.MatchString(id) {
			p.addf(fmt.Sprintf("%s.allowed_teams[%d]", path, j), "%q is not a workspace ID (T...)", id)
		}
	}
	for j, id := range i.AllowedChannels {
		if !slackChannelID.MatchString(id) {
			p.addf(fmt.Sprintf("%s.allowed_channels[%d]", path, j), "%q is not a channel ID (C... or G...): give IDs, not names", id)
		}
	}
	for j, id := range i.AllowedUserGroups {
		if !slackGroupID.MatchString(id) {
			p.addf(fmt.Sprintf("%s.allowed_user_groups[%d]", path, j), "%q is not a user group ID (S...)", id)
		}
	}
}

func (e *EmailConfig) validate(p *Problems, path string) {
	if strings.TrimSpace(e.Host) == "" {
		p.addf(path+".host", "required")
	}
	if e.Port < 0 || e.Port > 65535 {
		p.addf(path+".port", "must be 1 to 65535 (or left out for the TLS policy's usual port), got %d", e.Port)
	}
	switch e.TLS {
	case "mandatory", "opportunistic", "none", "implicit":
	default:
		p.addf(path+".tls", "%q: want mandatory (STARTTLS), opportunistic, implicit (SMTPS) or none", e.TLS)
	}
	resolveSecret(p, path, "password", &e.Password, e.PasswordFile, &e.passwordFromFile, false)
	if e.Username != "" && e.Password == "" {
		p.addf(path+".password", "required with username")
	}
	if e.Username == "" && e.Password != "" {
		p.addf(path+".username", "required with password")
	}
	if _, err := mail.ParseAddress(e.From); err != nil {
		p.addf(path+".from", "%q is not an address: %v", e.From, err)
	}
	positive(p, path+".timeout", e.Timeout)
	checkSeverityKeys(p, path+".recipients", e.Recipients)
	for _, sev := range slices.Sorted(maps.Keys(e.Recipients)) {
		checkAddresses(p, path+".recipients."+sev, e.Recipients[sev])
	}
	ce := &e.CustomerEngineering
	checkAddresses(p, path+".customer_engineering.to", ce.To)
	ce.Template = ""
	if ce.TemplateFile != "" {
		tp := path + ".customer_engineering.template_file"
		b, err := os.ReadFile(ce.TemplateFile) //nolint:gosec // the operator names the template file
		switch {
		case err != nil:
			p.addf(tp, "%v", err)
		case len(ce.To) == 0:
			p.addf(tp, "set with no addresses in customer_engineering.to: nobody would get the mail")
		default:
			if err := email.CheckCustomerTemplate(string(b)); err != nil {
				p.addf(tp, "%s: %v", ce.TemplateFile, err)
			} else {
				ce.Template = string(b)
			}
		}
	}
	for i, ev := range e.Events {
		if !mailableEvents[ev] {
			p.addf(fmt.Sprintf("%s.events[%d]", path, i), "unknown event %q: want opened, alert_joined, severity_raised, acknowledged, roles, update, reminder, reopened, note or resolved", ev)
		}
	}
}

func (z *ZoomConfig) validate(p *Problems, path string) {
	static := z.BridgeURL != "" || len(z.TeamBridges) > 0
	switch {
	case z.API != nil && static:
		p.addf(path, "set api (a meeting per incident) or bridge_url/team_bridges (static links), not both")
	case z.API == nil && !static:
		p.addf(path, "set bridge_url, team_bridges or api")
	}
	if z.BridgeURL != "" {
		checkURL(p, path+".bridge_url", z.BridgeURL)
	}
	for _, team := range slices.Sorted(maps.Keys(z.TeamBridges)) {
		checkURL(p, path+".team_bridges."+team, z.TeamBridges[team])
	}
	if a := z.API; a != nil {
		ap := path + ".api"
		if a.AccountID == "" {
			p.addf(ap+".account_id", "required")
		}
		if a.ClientID == "" {
			p.addf(ap+".client_id", "required")
		}
		resolveSecret(p, ap, "client_secret", &a.ClientSecret, a.ClientSecretFile, &a.secretFromFile, true)
		checkURL(p, ap+".token_url", a.TokenURL)
		checkURL(p, ap+".api_url", a.APIURL)
		if strings.TrimSpace(a.User) == "" {
			p.addf(ap+".user", "must not be empty")
		}
	}
}

// Build is the JSM pager's configuration.
func (j *JSMConfig) Build(client *http.Client) opsgenie.JSMConfig {
	out := opsgenie.JSMConfig{
		APIKey: j.APIKey.Value(), APIURL: j.APIURL, HTTPClient: client,
		Responder: opsgenie.Responder{Type: j.Responder.Type, Name: j.Responder.Name, ID: j.Responder.ID},
	}
	if r := j.REST; r != nil {
		out.REST = &opsgenie.JSMREST{URL: r.URL, CloudID: r.CloudID, Email: r.Email, APIToken: r.APIToken.Value()}
	}
	return out
}

func (j *JSMConfig) validate(p *Problems, path string) {
	resolveSecret(p, path, "api_key", &j.APIKey, j.APIKeyFile, &j.keyFromFile, true)
	checkResponderConfig(p, path, j.Responder)
	if r := j.REST; r != nil {
		resolveSecret(p, path+".rest", "api_token", &r.APIToken, r.APITokenFile, &r.tokenFromFile, true)
	}
}

// Build is the PagerDuty pager's configuration.
func (d *PagerDutyConfig) Build(client *http.Client) pagerduty.Config {
	out := pagerduty.Config{RoutingKey: d.RoutingKey.Value(), EventsURL: d.EventsURL, Responder: d.Responder, HTTPClient: client}
	if r := d.REST; r != nil {
		out.REST = &pagerduty.REST{URL: r.URL, Token: r.Token.Value(), From: r.From, RequesterID: r.RequesterID}
	}
	return out
}

// Secrets are the webhook secrets, for verifying signatures.
func (d *PagerDutyConfig) Secrets() []string {
	out := make([]string, 0, len(d.WebhookSecrets))
	for _, w := range d.WebhookSecrets {
		out = append(out, w.Value())
	}
	return out
}

func (d *PagerDutyConfig) validate(p *Problems, path string) {
	resolveSecret(p, path, "routing_key", &d.RoutingKey, d.RoutingKeyFile, &d.keyFromFile, true)
	if r := d.REST; r != nil {
		resolveSecret(p, path+".rest", "token", &r.Token, r.TokenFile, &r.tokenFromFile, true)
	}
	switch {
	case d.WebhookSecretFile != "" && len(d.WebhookSecrets) > 0 && !d.webhookFromFile:
		p.addf(path, "set webhook_secrets or webhook_secret_file, not both")
	case d.WebhookSecretFile != "":
		var one Secret
		var fromFile bool
		resolveSecret(p, path, "webhook_secret", &one, d.WebhookSecretFile, &fromFile, true)
		d.WebhookSecrets, d.webhookFromFile = nil, true
		if one != "" {
			d.WebhookSecrets = []Secret{one}
		}
	}
	for i, w := range d.WebhookSecrets {
		if len(w) < 16 {
			p.addf(fmt.Sprintf("%s.webhook_secrets[%d]", path, i), "too short to be PagerDuty's signing secret")
		}
	}
}

// Warnings are what the configuration loses without being wrong, for
// check-config and the daemon's start to say.
func (c *Config) Warnings() []string {
	var out []string
	if d := c.Notifications.PagerDuty; d != nil && d.REST == nil {
		out = append(out, "notifications.pagerduty.rest is not set: PagerDuty pages only the service's on-call; "+
			"nobody else can be asked to join an incident (a person paged on demand, the responder for an incident that came from PagerDuty), "+
			"and no note (the bridge's link when it comes after the page) reaches PagerDuty")
	}
	if d := c.Notifications.PagerDuty; d != nil && len(d.WebhookSecrets) == 0 {
		out = append(out, "notifications.pagerduty.webhook_secrets is not set: PagerDuty's webhooks (POST /api/v1/alerts/pagerduty) are refused")
	}
	if j := c.Notifications.JSM; j != nil && j.REST == nil {
		out = append(out, "notifications.jsm.rest is not set: JSM pages only the responder an alert is raised for; "+
			"nobody can be added to an alert that exists (a person paged on demand after the first page, "+
			"or the responder for an incident that came from JSM)")
	}
	return out
}

func checkResponderConfig(p *Problems, path string, r ResponderConfig) {
	if !responderTypes[r.Type] {
		p.addf(path+".responder.type", "%q: want user, team, escalation or schedule", r.Type)
	}
	if (r.Name == "") == (r.ID == "") {
		p.addf(path+".responder", "set name or id, exactly one")
	}
}

func (o *OpsGenieConfig) validate(p *Problems, path string) {
	resolveSecret(p, path, "api_key", &o.APIKey, o.APIKeyFile, &o.keyFromFile, true)
	if o.APIURL == "" || strings.Contains(o.APIURL, "/") {
		p.addf(path+".api_url", "%q: want a host such as api.opsgenie.com or api.eu.opsgenie.com, without scheme or path", o.APIURL)
	}
	checkResponderConfig(p, path, o.Responder)
}

func checkURL(p *Problems, path, v string) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.addf(path, "%q is not an absolute http(s) URL", v)
	}
}

func checkSeverityKeys[V any](p *Problems, path string, m map[string]V) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if s, err := policy.ParseSeverity(k); err != nil || s.String() != k {
			p.addf(path+"."+k, "unknown severity: want S1, S2, S3 or S4")
		}
	}
}

func checkAddresses(p *Problems, path string, addrs []string) {
	for i, a := range addrs {
		if _, err := mail.ParseAddress(a); err != nil {
			p.addf(fmt.Sprintf("%s[%d]", path, i), "%q is not an address: %v", a, err)
		}
	}
}
