// Package configs loads Responder's YAML configuration: strict decoding
// (an unknown key is an error with its path), defaults, and one Validate that
// reports every problem. It builds the validated types of policy.
package configs

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/timeinterval"
	"gopkg.in/yaml.v3"
)

// Default is the embedded configuration used when no file is given: loopback
// only, data in ./data, notifications written to the log, default policy.
//
//go:embed default.yml
var Default []byte

// Config is the whole configuration file.
type Config struct {
	Listen  string `yaml:"listen"`
	DataDir string `yaml:"data_dir"`
	// ExternalURL is the old name of http.public_url. After Load it holds
	// the URL in effect, whichever name set it (or the default).
	ExternalURL   string              `yaml:"external_url"`
	Log           LogConfig           `yaml:"log"`
	HTTP          HTTPConfig          `yaml:"http"`
	Auth          AuthConfig          `yaml:"auth"`
	Alertmanager  AlertmanagerConfig  `yaml:"alertmanager"`
	Store         StoreConfig         `yaml:"store"`
	Policy        PolicyConfig        `yaml:"policy"`
	Notifications NotificationsConfig `yaml:"notifications"`
	Drills        DrillsConfig        `yaml:"drills"`
	Display       DisplayConfig       `yaml:"display"`
	Heartbeats    []HeartbeatConfig   `yaml:"heartbeats"`
	// Runbooks are the checklists attached to incidents. Absent: the
	// basic incident process (DefaultRunbooks); an empty list: none.
	Runbooks []RunbookConfig `yaml:"runbooks"`
	// ActionItems sets how follow-up action items are reminded.
	ActionItems ActionItemsConfig `yaml:"action_items"`
}

// ActionItemsConfig sets the reminders of overdue action items.
type ActionItemsConfig struct {
	// RemindEvery is how often the owner of an overdue action item is
	// reminded in its incident's thread. Default 24h; 0s turns it off.
	RemindEvery *time.Duration `yaml:"remind_every"`
}

// RunbookConfig is one runbook: a named, ordered checklist and when it is
// attached to an incident.
type RunbookConfig struct {
	Name          string              `yaml:"name"`
	Title         string              `yaml:"title"`
	EveryIncident bool                `yaml:"every_incident"`
	Matchers      []string            `yaml:"matchers"`
	Scenarios     []string            `yaml:"scenarios"`
	Steps         []RunbookStepConfig `yaml:"steps"`
}

// RunbookStepConfig is one step of a runbook.
type RunbookStepConfig struct {
	Text string `yaml:"text"`
	Role string `yaml:"role"` // recovery, comms, or empty
	Link string `yaml:"link"`
}

// HeartbeatConfig is one heartbeat of the dead-man's switch.
type HeartbeatConfig struct {
	Name     string        `yaml:"name"`
	Interval time.Duration `yaml:"interval"`
	Grace    time.Duration `yaml:"grace"`
	Severity string        `yaml:"severity"`
	Team     string        `yaml:"team"`
	Matchers []string      `yaml:"matchers"`
}

// DisplayConfig says how times are shown to people.
type DisplayConfig struct {
	// TimeZone is the IANA zone whose local time is shown beside UTC in
	// Slack, email, reminders and post-mortems; empty: the zone of the
	// business hours (policy.business_hours.location, itself UTC by
	// default).
	TimeZone string `yaml:"time_zone"`
}

// DrillsConfig holds the drill scenarios.
type DrillsConfig struct {
	// Page pages the responder for drills too; by default nobody is paged.
	Page      bool                      `yaml:"page"`
	Scenarios map[string]ScenarioConfig `yaml:"scenarios"`
	// Schedule starts drills at set times.
	Schedule []DrillScheduleConfig `yaml:"schedule"`
}

// DrillScheduleConfig starts a drill of a scenario at the times of a cron
// line, read in a time zone.
type DrillScheduleConfig struct {
	Name     string `yaml:"name"`
	Scenario string `yaml:"scenario"`
	Cron     string `yaml:"cron"`
	// TimeZone is the IANA zone the cron line is read in; empty: the
	// display zone (display.time_zone, else the business hours' zone).
	TimeZone string `yaml:"time_zone"`
	// Organiser is who the drill is declared by, and the only one told of
	// a surprise drill beforehand (the token name that sees it listed).
	Organiser string `yaml:"organiser"`
	// Surprise hides the drill from the schedule everyone else sees.
	Surprise bool `yaml:"surprise"`
}

// ScenarioConfig is one drill scenario.
type ScenarioConfig struct {
	Title       string            `yaml:"title"`
	Severity    string            `yaml:"severity"`
	Labels      map[string]string `yaml:"labels"`
	Description string            `yaml:"description"`
}

// LogConfig sets the daemon's own log.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or console
}

// HTTPConfig bounds what a client may cost the server.
type HTTPConfig struct {
	BodyLimitBytes    int64         `yaml:"body_limit_bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	MaxIngestInFlight int           `yaml:"max_ingest_in_flight"`
	TLS               TLSConfig     `yaml:"tls"`
	// AllowedHosts are the names (or addresses) besides loopback, the
	// listen address and http.public_url's host that a request's Host may
	// carry; any other name is refused (DNS rebinding).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// MetricsRequiresToken makes /metrics take a token with the read
	// scope, when tokens are configured.
	MetricsRequiresToken bool `yaml:"metrics_requires_token"`
	// PublicURL is where people reach this daemon; every link to an
	// incident (messages, reminders, post-mortems) opens its page under
	// it. external_url is its old name; after Load, Config.ExternalURL
	// holds the one in effect.
	PublicURL string `yaml:"public_url"`
}

// TLSConfig serves the API over TLS (1.2 or later) when both files are set.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// AlertmanagerConfig bounds what one Alertmanager webhook may ask of the
// store.
type AlertmanagerConfig struct {
	// MaxAlerts is the most alerts of one webhook that are stored; the
	// others are counted as truncated, like Alertmanager's own max_alerts.
	MaxAlerts int `yaml:"max_alerts"`
}

// AuthConfig lists the bearer tokens the API accepts.
type AuthConfig struct {
	Tokens []TokenConfig `yaml:"tokens"`
}

// TokenConfig is one bearer token and what it may do.
type TokenConfig struct {
	Name      string   `yaml:"name"`
	Token     Secret   `yaml:"token"`
	TokenFile string   `yaml:"token_file"`
	Scopes    []string `yaml:"scopes"`
	// RatePerSecond and Burst limit the requests made with this token (a
	// token bucket); 0 is unlimited.
	RatePerSecond float64 `yaml:"rate_per_second"`
	Burst         int     `yaml:"burst"`

	fromFile bool // Token was read from TokenFile by Validate
}

// StoreConfig tunes the bbolt store and its write queue.
type StoreConfig struct {
	QueueSize   int           `yaml:"queue_size"`
	MaxBatch    int           `yaml:"max_batch"`
	LockTimeout time.Duration `yaml:"lock_timeout"`
	RetryAfter  time.Duration `yaml:"retry_after"`
	// Postgres, when set, keeps everything in PostgreSQL instead of the
	// bbolt file in data_dir, so that several replicas can share it.
	Postgres *PostgresConfig `yaml:"postgres"`
}

// PostgresConfig is the PostgreSQL database of the replicas.
type PostgresConfig struct {
	// DSN is a PostgreSQL URL or key=value string; it may hold a
	// password, so it is a secret (dsn_file reads it from a file).
	DSN      Secret `yaml:"dsn"`
	DSNFile  string `yaml:"dsn_file"`
	MaxConns int32  `yaml:"max_conns"`
	// LeaseTTL is how long the replica that delivers notifications keeps
	// the delivery lease without renewing it: after it dies, the others
	// wait this long before one takes over.
	LeaseTTL time.Duration `yaml:"lease_ttl"`

	dsnFromFile bool
}

// PolicyConfig is the YAML form of policy.Policy.
type PolicyConfig struct {
	DefaultSeverity    string                   `yaml:"default_severity"`
	Rules              []RuleConfig             `yaml:"rules"`
	OpsGeniePriorities map[string]string        `yaml:"opsgenie_priorities"`
	BusinessHours      BusinessHoursConfig      `yaml:"business_hours"`
	Severities         map[string]ProcessConfig `yaml:"severities"`
	ReopenWithin       *time.Duration           `yaml:"reopen_within"`
	ETAWithin          *time.Duration           `yaml:"eta_within"`
	// CustomerImpactLabel names the alert label that, set to "true", marks
	// customer impact.
	CustomerImpactLabel string `yaml:"customer_impact_label"`
	// KindLabel names the alert label whose value is an incident's kind for
	// post-mortems.
	KindLabel string `yaml:"kind_label"`
}

// RuleConfig is one severity rule: every matcher must match.
type RuleConfig struct {
	Name           string   `yaml:"name"`
	Matchers       []string `yaml:"matchers"`
	Severity       string   `yaml:"severity"`
	Team           string   `yaml:"team"`
	RunbookURL     string   `yaml:"runbook_url"`
	CustomerImpact bool     `yaml:"customer_impact"`
}

// BusinessHoursConfig holds Alertmanager time intervals and the location
// that intervals without their own are read in.
type BusinessHoursConfig struct {
	Location      string                      `yaml:"location"`
	TimeIntervals []timeinterval.TimeInterval `yaml:"time_intervals"`
}

// ProcessConfig is the process of one severity; unset fields keep the
// severity's default.
type ProcessConfig struct {
	Zoom           *bool          `yaml:"zoom"`
	PageOutOfHours *bool          `yaml:"page_out_of_hours"`
	Channels       []string       `yaml:"channels"`
	UpdateInterval *time.Duration `yaml:"update_interval"`
	AutoResolve    *bool          `yaml:"auto_resolve"`
}

// NotificationsConfig chooses where notifications go and how hard the
// outbox tries to deliver them.
type NotificationsConfig struct {
	// Log writes every notification to the daemon's log.
	Log         bool             `yaml:"log"`
	MaxAge      time.Duration    `yaml:"max_age"`
	RetryBase   time.Duration    `yaml:"retry_base"`
	RetryMax    time.Duration    `yaml:"retry_max"`
	Concurrency int              `yaml:"concurrency"`
	Timeout     time.Duration    `yaml:"timeout"`
	Slack       *SlackConfig     `yaml:"slack"`
	Email       *EmailConfig     `yaml:"email"`
	Zoom        *ZoomConfig      `yaml:"zoom"`
	OpsGenie    *OpsGenieConfig  `yaml:"opsgenie"`
	JSM         *JSMConfig       `yaml:"jsm"`
	PagerDuty   *PagerDutyConfig `yaml:"pagerduty"`
	Paging      PagingConfig     `yaml:"paging"`
}

// PagingConfig chooses the pager an incident pages through when more than
// one is configured: its team's, else its severity's, else the default.
type PagingConfig struct {
	// Pager is the default pager (opsgenie, jsm or pagerduty); it may be
	// left out when only one pager is configured.
	Pager          string            `yaml:"pager"`
	TeamPagers     map[string]string `yaml:"team_pagers"`
	SeverityPagers map[string]string `yaml:"severity_pagers"`
}

// SlackConfig posts announcements and threads with a bot token.
type SlackConfig struct {
	Token            Secret            `yaml:"token"`
	TokenFile        string            `yaml:"token_file"`
	APIURL           string            `yaml:"api_url"`
	Channel          string            `yaml:"channel"`
	SeverityChannels map[string]string `yaml:"severity_channels"`
	TeamChannels     map[string]string `yaml:"team_channels"`
	CustomerChannel  string            `yaml:"customer_channel"`
	RatePerSecond    float64           `yaml:"rate_per_second"`
	Burst            int               `yaml:"burst"`
	// Interactivity makes Slack a front door: the slash command (and the
	// buttons of the root message) act on incidents.
	Interactivity *SlackInteractivity `yaml:"interactivity"`

	tokenFromFile bool
}

// SlackInteractivity is how Slack reaches Responder and who may act.
type SlackInteractivity struct {
	// Mode is socket (Responder opens a websocket with the app-level
	// token: no ingress needed) or http (Slack posts to the request URLs,
	// signed with the signing secret).
	Mode              string `yaml:"mode"`
	AppToken          Secret `yaml:"app_token"`
	AppTokenFile      string `yaml:"app_token_file"`
	SigningSecret     Secret `yaml:"signing_secret"`
	SigningSecretFile string `yaml:"signing_secret_file"`
	// Command is the slash command's name (default /incident).
	Command           string   `yaml:"command"`
	AllowedTeams      []string `yaml:"allowed_teams"`
	AllowedChannels   []string `yaml:"allowed_channels"`
	AllowedUserGroups []string `yaml:"allowed_user_groups"`

	appTokenFromFile, secretFromFile bool
}

// EmailConfig sends mail over SMTP.
type EmailConfig struct {
	Host                string              `yaml:"host"`
	Port                int                 `yaml:"port"`
	TLS                 string              `yaml:"tls"`
	Username            string              `yaml:"username"`
	Password            Secret              `yaml:"password"`
	PasswordFile        string              `yaml:"password_file"`
	From                string              `yaml:"from"`
	HelloName           string              `yaml:"hello_name"`
	Timeout             time.Duration       `yaml:"timeout"`
	Recipients          map[string][]string `yaml:"recipients"`
	CustomerEngineering CustomerEngineering `yaml:"customer_engineering"`
	Events              []string            `yaml:"events"`

	passwordFromFile bool
}

// CustomerEngineering is customer engineering's mail: a list of addresses,
// or a mapping with the list (to) and their own template (template_file).
type CustomerEngineering struct {
	To           []string `yaml:"to"`
	TemplateFile string   `yaml:"template_file"`
	// Template is the template file's text, read by Validate.
	Template string `yaml:"-"`
}

// UnmarshalYAML takes a list of addresses, or a mapping with to and
// template_file, refusing any other key.
func (c *CustomerEngineering) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.SequenceNode:
		return n.Decode(&c.To)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value != "to" && k.Value != "template_file" {
				return fmt.Errorf("unknown key %q: want to and template_file", k.Value)
			}
		}
		type plain CustomerEngineering
		return n.Decode((*plain)(c))
	}
	return errors.New("want a list of addresses, or a mapping with to (the addresses) and template_file")
}

// ZoomConfig gives incidents a bridge: a static URL, or a meeting created
// per incident through Zoom's API.
type ZoomConfig struct {
	BridgeURL   string            `yaml:"bridge_url"`
	TeamBridges map[string]string `yaml:"team_bridges"`
	API         *ZoomAPIConfig    `yaml:"api"`
}

// ZoomAPIConfig is a Zoom server-to-server OAuth app.
type ZoomAPIConfig struct {
	AccountID        string `yaml:"account_id"`
	ClientID         string `yaml:"client_id"`
	ClientSecret     Secret `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	TokenURL         string `yaml:"token_url"`
	APIURL           string `yaml:"api_url"`
	User             string `yaml:"user"`

	secretFromFile bool
}

// OpsGenieConfig pages a responder through OpsGenie.
type OpsGenieConfig struct {
	APIKey     Secret          `yaml:"api_key"`
	APIKeyFile string          `yaml:"api_key_file"`
	APIURL     string          `yaml:"api_url"`
	Responder  ResponderConfig `yaml:"responder"`

	keyFromFile bool
}

// JSMConfig pages a responder through Jira Service Management
// Operations: its API integration (OpsGenie's alert API on Atlassian's
// host), and optionally its REST API to add responders to an alert.
type JSMConfig struct {
	APIKey     Secret          `yaml:"api_key"`
	APIKeyFile string          `yaml:"api_key_file"`
	APIURL     string          `yaml:"api_url"`
	Responder  ResponderConfig `yaml:"responder"`
	REST       *JSMRESTConfig  `yaml:"rest"`

	keyFromFile bool
}

// JSMRESTConfig is an Atlassian account's API token for JSM's REST API.
type JSMRESTConfig struct {
	URL          string `yaml:"url"`
	CloudID      string `yaml:"cloud_id"`
	Email        string `yaml:"email"`
	APIToken     Secret `yaml:"api_token"`
	APITokenFile string `yaml:"api_token_file"`

	tokenFromFile bool
}

// PagerDutyConfig pages through a PagerDuty service: its Events API v2
// integration key, optionally REST API access (responders, notes), and the
// secrets of the v3 webhook subscriptions that post to Responder.
type PagerDutyConfig struct {
	RoutingKey     Secret               `yaml:"routing_key"`
	RoutingKeyFile string               `yaml:"routing_key_file"`
	EventsURL      string               `yaml:"events_url"`
	REST           *PagerDutyRESTConfig `yaml:"rest"`
	// Responder is asked to join incidents paged out of hours besides the
	// service's on-call: user:PXXXXXX or escalation:PXXXXXX.
	Responder string `yaml:"responder"`
	// WebhookSecrets verify the signatures of PagerDuty's v3 webhooks
	// (POST /api/v1/alerts/pagerduty); several while one is rotated.
	WebhookSecrets    []Secret `yaml:"webhook_secrets"`
	WebhookSecretFile string   `yaml:"webhook_secret_file"`

	keyFromFile, webhookFromFile bool
}

// PagerDutyRESTConfig is a PagerDuty REST API key and the user it acts as.
type PagerDutyRESTConfig struct {
	URL         string `yaml:"url"`
	Token       Secret `yaml:"token"`
	TokenFile   string `yaml:"token_file"`
	From        string `yaml:"from"`
	RequesterID string `yaml:"requester_id"`

	tokenFromFile bool
}

// ResponderConfig is who gets paged: a user, team, escalation or schedule,
// by name or id.
type ResponderConfig struct {
	Type string `yaml:"type"`
	Name string `yaml:"name"`
	ID   string `yaml:"id"`
}

// Secret is a string that never prints: in logs, errors and re-marshalled
// config it shows as <secret>.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string { return redacted }

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return redacted }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return redacted, nil
}

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + redacted + `"`), nil
}

// MarshalText redacts the secret (zerolog and encoding/* use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Secrets lists the value of every secret in the configuration (tokens,
// keys, passwords), so that the log can make sure none is ever written.
// Call it after Load: secrets from *_file are read by Validate.
func (c *Config) Secrets() []string {
	var out []string
	add := func(s Secret) {
		if s != "" {
			out = append(out, s.Value())
		}
	}
	for _, t := range c.Auth.Tokens {
		add(t.Token)
	}
	n := c.Notifications
	if n.Slack != nil {
		add(n.Slack.Token)
		if i := n.Slack.Interactivity; i != nil {
			add(i.AppToken)
			add(i.SigningSecret)
		}
	}
	// Beside a secret, the pair it travels in, which a server may echo
	// base64-encoded (the redactor searches every secret in base64 too):
	// SMTP AUTH PLAIN's \x00user\x00password, Basic client_id:secret.
	if n.Email != nil {
		add(n.Email.Password)
		if n.Email.Password != "" {
			out = append(out, "\x00"+n.Email.Username+"\x00"+n.Email.Password.Value(), n.Email.Username+":"+n.Email.Password.Value())
		}
	}
	if n.Zoom != nil && n.Zoom.API != nil {
		add(n.Zoom.API.ClientSecret)
		if n.Zoom.API.ClientSecret != "" {
			out = append(out, n.Zoom.API.ClientID+":"+n.Zoom.API.ClientSecret.Value())
		}
	}
	if n.OpsGenie != nil {
		add(n.OpsGenie.APIKey)
	}
	if pg := c.Store.Postgres; pg != nil {
		add(pg.DSN)
		if u, err := url.Parse(pg.DSN.Value()); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				out = append(out, pw)
			}
		}
		for _, f := range strings.Fields(pg.DSN.Value()) {
			if pw, ok := strings.CutPrefix(f, "password="); ok && pw != "" {
				out = append(out, strings.Trim(pw, "'"))
			}
		}
	}
	if p := n.PagerDuty; p != nil {
		add(p.RoutingKey)
		for _, w := range p.WebhookSecrets {
			add(w)
		}
		if p.REST != nil {
			add(p.REST.Token)
		}
	}
	if n.JSM != nil {
		add(n.JSM.APIKey)
		if r := n.JSM.REST; r != nil && r.APIToken != "" {
			add(r.APIToken)
			out = append(out, r.Email+":"+r.APIToken.Value()) // Basic auth
		}
	}
	return out
}

// Value is the secret itself, for the one place that needs it.
func (s Secret) Value() string { return string(s) }
