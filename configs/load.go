package configs

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/alertmanager/timeinterval"
	"gopkg.in/yaml.v3"

	"github.com/responder-sre/responder/policy"
)

// Overrides are command-line flags that win over the file.
type Overrides struct {
	Listen  string
	DataDir string
}

// Problems is every problem found in a configuration, each prefixed with the
// path of the key it concerns.
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return "invalid config: " + p[0]
	}
	return fmt.Sprintf("invalid config (%d problems):\n  %s", len(p), strings.Join(p, "\n  "))
}

func (p *Problems) addf(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

// Load reads the file at path (the embedded default when path is empty),
// applies overrides and defaults, and validates. The error, when not a read
// error, is Problems listing everything wrong. It makes no network calls and
// touches no database: check-config and serve both use it.
func Load(path string, o Overrides) (*Config, error) {
	data := Default
	if path != "" {
		b, err := os.ReadFile(path) //nolint:gosec // the operator names the config file
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		data = b
	}
	cfg, problems := parse(data)
	if cfg == nil {
		return nil, problems
	}
	// Overrides go in before defaults, so that defaults derived from them
	// (external_url from listen) see the overridden value.
	if o.Listen != "" {
		cfg.Listen = o.Listen
	}
	if o.DataDir != "" {
		cfg.DataDir = o.DataDir
	}
	cfg.applyDefaults()
	if e := cfg.Notifications.Email; e != nil && path != "" {
		// Like Alertmanager's templates: relative to the config file.
		if f := e.CustomerEngineering.TemplateFile; f != "" && !filepath.IsAbs(f) {
			e.CustomerEngineering.TemplateFile = filepath.Join(filepath.Dir(path), f)
		}
	}
	var more Problems
	if errors.As(cfg.Validate(), &more) {
		problems = append(problems, more...)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return cfg, nil
}

// Parse decodes YAML strictly and applies defaults. It does not validate.
// Unknown keys and values of the wrong type are returned as Problems beside
// the partly decoded config, so that Load can report them together with
// what Validate finds; a YAML syntax error returns no config.
func Parse(data []byte) (*Config, error) {
	cfg, problems := parse(data)
	if cfg != nil {
		cfg.applyDefaults()
	}
	if len(problems) > 0 {
		return cfg, problems
	}
	return cfg, nil
}

// parse is Parse without the defaults.
func parse(data []byte) (*Config, Problems) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, Problems{"yaml: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var problems Problems
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, Problems{"yaml: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	case !emptyDocument(&next):
		problems.addf("yaml", "a second document starts at line %d: a config file holds one document", next.Line)
	}
	w := walker{p: &problems, seen: map[walked]bool{}}
	w.walk(&root, reflect.TypeFor[Config](), "")
	cfg := &Config{}
	// The walk reported unknown keys and values of the wrong type with their
	// paths, and replaced those values by null; what the decoder still
	// reports, it reports by line only.
	if err := root.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, append(problems, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		problems = append(problems, te.Errors...)
	}
	return cfg, problems
}

// emptyDocument reports whether n holds nothing, as after a trailing "---".
func emptyDocument(n *yaml.Node) bool {
	return len(n.Content) == 0 || (len(n.Content) == 1 && n.Content[0].ShortTag() == "!!null")
}

// walker walks the YAML tree beside the Go type it decodes into and reports,
// with its dotted path and line, every key the type does not have and every
// value that does not decode into its field.
type walker struct {
	p    *Problems
	seen map[walked]bool
}

type walked struct {
	n *yaml.Node
	t reflect.Type
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.walk(c, t, path)
		}
		return
	case yaml.AliasNode:
		// An anchor may be referenced any number of times: walk it once per
		// type, so that a small file cannot make the walk and the list of
		// problems grow without bound.
		if n.Alias == nil || w.seen[walked{n.Alias, t}] {
			return
		}
		w.seen[walked{n.Alias, t}] = true
		w.walk(n.Alias, t, path)
		return
	}
	if n.Kind == 0 || n.ShortTag() == "!!null" {
		return // an empty file, or null: decodes to the zero value
	}
	if customYAML(t) {
		// The type decodes itself, and yaml.v3 stops the whole decode at the
		// first error such a type returns: decode it alone, here.
		w.decode(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.mismatch(n, path, "a mapping")
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				w.p.addf(join(path, k.Value), "unknown key (line %d)", k.Line)
				continue
			}
			w.walk(v, ft, join(path, k.Value))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.mismatch(n, path, "a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.mismatch(n, path, "a list")
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		w.decode(n, t, path)
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// decode decodes n alone into a new t and reports an error with n's path.
// A node that does not decode is replaced by null, so that the decode of the
// whole file skips it instead of reporting it again without a path.
func (w *walker) decode(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	switch {
	case t == durationType:
		w.p.addf(path, "want a duration with a unit, such as 30s, 5m or 0s (line %d)", n.Line)
	case errors.As(err, &te):
		// "line 3: cannot unmarshal !!str `lots` into int64"
		for _, e := range te.Errors {
			_, msg, ok := strings.Cut(e, ": ")
			if !ok {
				msg = e
			}
			w.p.addf(path, "%s (line %d)", msg, n.Line)
		}
	default:
		w.p.addf(path, "%s (line %d)", strings.TrimPrefix(err.Error(), "yaml: "), n.Line)
	}
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// mismatch reports a value of the wrong kind without quoting it: it may be
// a token written in the wrong place.
func (w *walker) mismatch(n *yaml.Node, path, want string) {
	got := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}[n.Kind]
	if got == "" {
		got = "a single value"
	}
	if path == "" {
		path = "config"
	}
	w.p.addf(path, "want %s, got %s (line %d)", want, got, n.Line)
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	yamlUnmarshaler    = reflect.TypeFor[yaml.Unmarshaler]()
	obsoleteUnmarshler = reflect.TypeFor[interface {
		UnmarshalYAML(func(any) error) error
	}]()
)

func customYAML(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(yamlUnmarshaler) || pt.Implements(obsoleteUnmarshler)
}

// yamlFields maps each YAML key of a struct to its field type, following
// inline fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// Defaults of the configuration.
const (
	DefaultListen       = "127.0.0.1:9095"
	DefaultDataDir      = "./data"
	DefaultBodyLimit    = 1 << 20
	DefaultReopenWithin = 30 * time.Minute
	DefaultETAWithin    = 30 * time.Minute
	DefaultMaxAlerts    = 1000
)

func (c *Config) applyDefaults() {
	setDefault(&c.Listen, DefaultListen)
	setDefault(&c.DataDir, DefaultDataDir)
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "json")
	setDefault(&c.HTTP.BodyLimitBytes, DefaultBodyLimit)
	setDefault(&c.HTTP.ReadHeaderTimeout, 5*time.Second)
	setDefault(&c.HTTP.ReadTimeout, 30*time.Second)
	setDefault(&c.HTTP.WriteTimeout, 30*time.Second)
	setDefault(&c.HTTP.IdleTimeout, 2*time.Minute)
	setDefault(&c.HTTP.ShutdownTimeout, 30*time.Second)
	setDefault(&c.HTTP.MaxHeaderBytes, 64<<10)
	setDefault(&c.HTTP.MaxIngestInFlight, 512)
	if len(c.HTTP.AllowedHosts) == 0 {
		c.HTTP.AllowedHosts = nil // "allowed_hosts: []" is the default, none
	}
	setDefault(&c.Store.QueueSize, 1024)
	setDefault(&c.Store.MaxBatch, 256)
	setDefault(&c.Store.RetryAfter, time.Second)
	setDefault(&c.Alertmanager.MaxAlerts, DefaultMaxAlerts)
	for i := range c.Auth.Tokens {
		if t := &c.Auth.Tokens[i]; t.RatePerSecond > 0 && t.Burst == 0 {
			// A bucket that holds one second's worth of requests.
			t.Burst = max(1, int(math.Ceil(t.RatePerSecond)))
		}
	}
	if c.HTTP.PublicURL != "" && c.ExternalURL == "" {
		c.ExternalURL = c.HTTP.PublicURL
	}
	if c.ExternalURL == "" {
		scheme := "http://"
		if c.HTTP.TLS.Enabled() {
			scheme = "https://"
		}
		c.ExternalURL = scheme + c.Listen
	}
	c.Notifications.applyDefaults()
	pc := &c.Policy
	setDefault(&pc.DefaultSeverity, "S4")
	setDefault(&pc.CustomerImpactLabel, "customer_impact")
	setDefault(&pc.KindLabel, "alertname")
	if pc.Rules == nil {
		pc.Rules = []RuleConfig{
			{Name: "critical-in-production", Matchers: []string{`severity=~"critical|page"`, `env=~"prod|production"`}, Severity: "S1"},
			{Name: "critical", Matchers: []string{`severity=~"critical|page"`}, Severity: "S2"},
			{Name: "warning", Matchers: []string{`severity=~"warning|error"`}, Severity: "S3"},
		}
	}
	if pc.OpsGeniePriorities == nil {
		pc.OpsGeniePriorities = map[string]string{"P1": "S1", "P2": "S2", "P3": "S3", "P4": "S4", "P5": "S4"}
	}
	setDefault(&pc.BusinessHours.Location, "UTC")
	if pc.BusinessHours.TimeIntervals == nil {
		pc.BusinessHours.TimeIntervals = []timeinterval.TimeInterval{{
			Times:    []timeinterval.TimeRange{{StartMinute: 9 * 60, EndMinute: 17 * 60}},
			Weekdays: []timeinterval.WeekdayRange{{InclusiveRange: timeinterval.InclusiveRange{Begin: 1, End: 5}}},
		}}
	}
	if pc.ReopenWithin == nil {
		d := DefaultReopenWithin
		pc.ReopenWithin = &d
	}
	if pc.ETAWithin == nil {
		d := DefaultETAWithin
		pc.ETAWithin = &d
	}
	if c.Runbooks == nil {
		c.Runbooks = DefaultRunbooks()
	}
	if c.ActionItems.RemindEvery == nil {
		d := 24 * time.Hour
		c.ActionItems.RemindEvery = &d
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// defaultProcess is the incident process of each severity unless the config
// overrides a field: S1/S2 get a bridge, a page out of hours and hourly
// updates; S3 gets Slack and four-hourly updates; S4 is recorded only.
func defaultProcess(s policy.Severity) policy.Process {
	switch s {
	case policy.S1, policy.S2:
		return policy.Process{Zoom: true, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: time.Hour, AutoResolve: true}
	case policy.S3:
		return policy.Process{Channels: []string{"slack"}, UpdateInterval: 4 * time.Hour, AutoResolve: true}
	default:
		return policy.Process{AutoResolve: true}
	}
}

// Channels a severity may announce on.
var knownChannels = map[string]bool{"slack": true, "email": true}

// Scopes a token may carry.
var knownScopes = map[string]bool{"ingest": true, "read": true, "write": true, "admin": true}

// MinTokenLength is the shortest bearer token accepted.
const MinTokenLength = 16

// Validate checks the whole configuration and reports every problem found,
// each with its path. It reads token files but opens no connection.
func (c *Config) Validate() error {
	var p Problems
	if _, err := c.listenIsLoopback(); err != nil {
		p.addf("listen", "%v", err)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		p.addf("data_dir", "must not be empty")
	}
	urlKey := "external_url"
	if c.HTTP.PublicURL != "" {
		urlKey = "http.public_url"
		if c.ExternalURL != c.HTTP.PublicURL {
			p.addf(urlKey, "%q and external_url %q differ: external_url is the old name of http.public_url, set only one", c.HTTP.PublicURL, c.ExternalURL)
		}
	}
	if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.addf(urlKey, "%q is not an absolute http(s) URL, such as https://responder.example.com", c.ExternalURL)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.addf("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		p.addf("log.format", "%q: want json or console", c.Log.Format)
	}
	c.validateHTTP(&p)
	c.validateAuth(&p)
	if c.Store.QueueSize < 1 {
		p.addf("store.queue_size", "must be at least 1, got %d", c.Store.QueueSize)
	}
	if c.Store.MaxBatch < 1 {
		p.addf("store.max_batch", "must be at least 1, got %d", c.Store.MaxBatch)
	}
	if c.Store.LockTimeout < 0 {
		p.addf("store.lock_timeout", "must be 0s (fail at once) or a positive duration, got %s", c.Store.LockTimeout)
	}
	positive(&p, "store.retry_after", c.Store.RetryAfter)
	if pg := c.Store.Postgres; pg != nil {
		resolveSecret(&p, "store.postgres", "dsn", &pg.DSN, pg.DSNFile, &pg.dsnFromFile, true)
		if pg.MaxConns < 0 {
			p.addf("store.postgres.max_conns", "must be positive, got %d", pg.MaxConns)
		}
		if pg.LeaseTTL != 0 && pg.LeaseTTL < time.Second {
			p.addf("store.postgres.lease_ttl", "%s: at least 1s (it is renewed every third of it)", pg.LeaseTTL)
		}
	}
	if c.Alertmanager.MaxAlerts < 1 {
		p.addf("alertmanager.max_alerts", "must be at least 1, got %d", c.Alertmanager.MaxAlerts)
	}
	c.buildPolicy(&p)
	c.Notifications.validate(&p)
	c.Drills.validate(&p)
	if d := c.ActionItems.RemindEvery; d != nil && *d != 0 && *d < time.Hour {
		p.addf("action_items.remind_every", "%s: at least 1h (or 0s to turn the reminders off)", *d)
	}
	if c.Display.TimeZone != "" {
		if _, err := time.LoadLocation(c.Display.TimeZone); err != nil {
			p.addf("display.time_zone", "%q: %v (want an IANA zone such as Europe/Berlin)", c.Display.TimeZone, err)
		}
	}
	if len(p) > 0 {
		return p
	}
	return nil
}

// DisplayZone is the zone whose local time is shown beside UTC: the
// display zone, else the business hours' zone; nil for UTC only. Call it
// after Validate.
func (c *Config) DisplayZone() *time.Location {
	name := c.Display.TimeZone
	if name == "" {
		name = c.Policy.BusinessHours.Location
	}
	loc, err := time.LoadLocation(name)
	if err != nil || loc.String() == "UTC" {
		return nil
	}
	return loc
}

func positive(p *Problems, path string, d time.Duration) {
	if d <= 0 {
		p.addf(path, "must be a positive duration, got %s", d)
	}
}

func (c *Config) validateHTTP(p *Problems) {
	h := c.HTTP
	if h.BodyLimitBytes < 1024 {
		p.addf("http.body_limit_bytes", "must be at least 1024, got %d", h.BodyLimitBytes)
	}
	if h.MaxIngestInFlight < 1 {
		p.addf("http.max_ingest_in_flight", "must be at least 1, got %d", h.MaxIngestInFlight)
	}
	if h.MaxHeaderBytes < 4096 {
		p.addf("http.max_header_bytes", "must be at least 4096, got %d", h.MaxHeaderBytes)
	}
	positive(p, "http.read_header_timeout", h.ReadHeaderTimeout)
	positive(p, "http.read_timeout", h.ReadTimeout)
	positive(p, "http.write_timeout", h.WriteTimeout)
	positive(p, "http.idle_timeout", h.IdleTimeout)
	positive(p, "http.shutdown_timeout", h.ShutdownTimeout)
	for i, host := range h.AllowedHosts {
		if err := checkHostName(host); err != nil {
			p.addf(fmt.Sprintf("http.allowed_hosts[%d]", i), "%v", err)
		}
	}
	if h.TLS.Enabled() {
		if _, err := h.TLS.ServerConfig(); err != nil {
			p.addf("http.tls", "%v", err)
		}
	}
}

// ServerConfig loads the certificate and key into a server TLS
// configuration that accepts TLS 1.2 and later. Only the files' names appear
// in its errors, never their contents.
func (t TLSConfig) ServerConfig() (*tls.Config, error) {
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return nil, errors.New("cert_file and key_file are not set")
	case t.CertFile == "":
		return nil, errors.New("key_file is set without cert_file: set both or neither")
	case t.KeyFile == "":
		return nil, errors.New("cert_file is set without key_file: set both or neither")
	}
	pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}

// listenIsLoopback reports whether the listen address only accepts local
// connections. An empty host means every interface.
func (c *Config) listenIsLoopback() (bool, error) {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false, fmt.Errorf("%q is not host:port: %w", c.Listen, err)
	}
	if port == "" {
		return false, fmt.Errorf("%q has no port", c.Listen)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

func (c *Config) validateAuth(p *Problems) {
	names := map[string]bool{}
	values := map[string]string{}
	for i := range c.Auth.Tokens {
		t := &c.Auth.Tokens[i]
		path := fmt.Sprintf("auth.tokens[%d]", i)
		switch {
		case t.Name == "":
			p.addf(path+".name", "must not be empty")
		case names[t.Name]:
			p.addf(path+".name", "%q is used by another token", t.Name)
		}
		names[t.Name] = true
		resolveSecret(p, path, "token", &t.Token, t.TokenFile, &t.fromFile, true)
		if t.Token != "" {
			if len(t.Token) < MinTokenLength {
				p.addf(path+".token", "must be at least %d characters", MinTokenLength)
			}
			if other, dup := values[string(t.Token)]; dup {
				p.addf(path+".token", "same value as token %q", other)
			}
			values[string(t.Token)] = t.Name
		}
		if len(t.Scopes) == 0 {
			p.addf(path+".scopes", "must list at least one of ingest, read, write, admin")
		}
		switch r := t.RatePerSecond; {
		case math.IsNaN(r) || math.IsInf(r, 0) || r < 0:
			p.addf(path+".rate_per_second", "must be a number of requests per second, 0 or more (0 is unlimited), got %v", r)
		case t.Burst < 0:
			p.addf(path+".burst", "must not be negative, got %d", t.Burst)
		case r == 0 && t.Burst != 0:
			p.addf(path+".burst", "is set without rate_per_second: set a rate, or leave both out for no limit")
		}
		for j, s := range t.Scopes {
			if !knownScopes[s] {
				p.addf(fmt.Sprintf("%s.scopes[%d]", path, j), "unknown scope %q: want ingest, read, write or admin", s)
			}
		}
	}
	if loopback, err := c.listenIsLoopback(); err == nil && !loopback && len(c.Auth.Tokens) == 0 {
		p.addf("auth.tokens", "listen address %s is not loopback: configure at least one token, or listen on 127.0.0.1", c.Listen)
	}
}

// BuildPolicy builds the validated policy. Call it after Validate.
func (c *Config) BuildPolicy() (*policy.Policy, error) {
	var p Problems
	pol := c.buildPolicy(&p)
	if len(p) > 0 {
		return nil, p
	}
	return pol, nil
}

func (c *Config) buildPolicy(p *Problems) *policy.Policy {
	pc := c.Policy
	pol := &policy.Policy{
		OpsGeniePriorities:  map[string]policy.Severity{},
		Process:             map[policy.Severity]policy.Process{},
		CustomerImpactLabel: pc.CustomerImpactLabel,
		KindLabel:           pc.KindLabel,
	}
	if s, err := policy.ParseSeverity(pc.DefaultSeverity); err != nil {
		p.addf("policy.default_severity", "%v", err)
	} else {
		pol.DefaultSeverity = s
	}
	ruleNames := map[string]bool{}
	for i, rc := range pc.Rules {
		path := fmt.Sprintf("policy.rules[%d]", i)
		r := policy.Rule{Name: rc.Name, Team: rc.Team, RunbookURL: rc.RunbookURL, CustomerImpact: rc.CustomerImpact}
		if rc.Name == "" {
			r.Name = fmt.Sprintf("rule-%d", i)
		} else if ruleNames[rc.Name] {
			p.addf(path+".name", "%q is used by another rule", rc.Name)
		}
		ruleNames[r.Name] = true
		if len(rc.Matchers) == 0 {
			p.addf(path+".matchers", "must list at least one matcher (a rule matching everything is default_severity)")
		}
		r.Matchers = parseMatchers(p, path, rc.Matchers)
		if rc.Severity == "" {
			p.addf(path+".severity", "is required: S1, S2, S3 or S4")
		} else if s, err := policy.ParseSeverity(rc.Severity); err != nil {
			p.addf(path+".severity", "%v", err)
		} else {
			r.Severity = s
		}
		if rc.RunbookURL != "" {
			if u, err := url.Parse(rc.RunbookURL); err != nil || u.Scheme == "" || u.Host == "" {
				p.addf(path+".runbook_url", "%q is not an absolute URL", rc.RunbookURL)
			}
		}
		pol.Rules = append(pol.Rules, r)
	}
	for _, prio := range slices.Sorted(maps.Keys(pc.OpsGeniePriorities)) {
		path := "policy.opsgenie_priorities." + prio
		switch prio {
		case "P1", "P2", "P3", "P4", "P5":
		default:
			p.addf(path, "unknown priority: want P1..P5")
			continue
		}
		s, err := policy.ParseSeverity(pc.OpsGeniePriorities[prio])
		if err != nil {
			p.addf(path, "%v", err)
			continue
		}
		pol.OpsGeniePriorities[prio] = s
	}
	loc, err := time.LoadLocation(pc.BusinessHours.Location)
	if err != nil {
		p.addf("policy.business_hours.location", "%q: %v", pc.BusinessHours.Location, err)
	} else {
		pol.BusinessHours = policy.BusinessHours{Location: loc, Intervals: pc.BusinessHours.TimeIntervals}
	}
	for _, name := range slices.Sorted(maps.Keys(pc.Severities)) {
		if s, err := policy.ParseSeverity(name); err != nil || s.String() != name {
			p.addf("policy.severities."+name, "unknown severity: want S1, S2, S3 or S4")
		}
	}
	for _, s := range policy.Severities() {
		proc := defaultProcess(s)
		pcfg, ok := pc.Severities[s.String()]
		if ok {
			path := "policy.severities." + s.String()
			if pcfg.Zoom != nil {
				proc.Zoom = *pcfg.Zoom
			}
			if pcfg.PageOutOfHours != nil {
				proc.PageOutOfHours = *pcfg.PageOutOfHours
			}
			if pcfg.AutoResolve != nil {
				proc.AutoResolve = *pcfg.AutoResolve
			}
			if pcfg.UpdateInterval != nil {
				if *pcfg.UpdateInterval < 0 || (*pcfg.UpdateInterval > 0 && *pcfg.UpdateInterval < time.Minute) {
					p.addf(path+".update_interval", "must be 0s (no reminders) or at least 1m, got %s", *pcfg.UpdateInterval)
				}
				proc.UpdateInterval = *pcfg.UpdateInterval
			}
			if pcfg.Channels != nil {
				proc.Channels = pcfg.Channels
				for j, ch := range pcfg.Channels {
					if !knownChannels[ch] {
						p.addf(fmt.Sprintf("%s.channels[%d]", path, j), "unknown channel %q: want slack or email", ch)
					}
				}
			}
		}
		pol.Process[s] = proc
	}
	if pc.ReopenWithin != nil {
		if *pc.ReopenWithin < 0 {
			p.addf("policy.reopen_within", "must not be negative, got %s", *pc.ReopenWithin)
		}
		pol.ReopenWithin = *pc.ReopenWithin
	}
	if pc.ETAWithin != nil {
		if *pc.ETAWithin < 0 {
			p.addf("policy.eta_within", "must not be negative (0s never asks), got %s", *pc.ETAWithin)
		}
		pol.ETAWithin = *pc.ETAWithin
	}
	pol.Heartbeats = c.buildHeartbeats(p)
	pol.Runbooks = c.buildRunbooks(p)
	return pol
}

// Bounds of runbooks, so that an incident's checklist stays a page long.
const (
	maxRunbooks     = 100
	maxRunbookSteps = 50
	maxStepText     = 500
)

// DefaultRunbooks is the basic procedure every incident follows, attached
// to every incident when the configuration has no runbooks key.
func DefaultRunbooks() []RunbookConfig {
	return []RunbookConfig{{
		Name:          "incident-process",
		Title:         "The incident process",
		EveryIncident: true,
		Steps: []RunbookStepConfig{
			{Text: "Determine the severity (S1-S4) and correct it if the alert got it wrong"},
			{Text: "Inform the team in the incident's channel", Role: policy.RoleComms},
			{Text: "Open the bridge and invite the team (S1/S2; skip for S3/S4)", Role: policy.RoleComms},
			{Text: "Assign the two roles: a recovery lead and a communications lead"},
			{Text: "Inform customer engineering if customers are affected (skip if not)", Role: policy.RoleComms},
			{Text: "Make a plan for recovery and give an ETA", Role: policy.RoleRecovery},
			{Text: "Post progress updates at the severity's interval until resolved", Role: policy.RoleComms},
			{Text: "Write the post-mortem and schedule its review"},
		},
	}}
}

// buildRunbooks checks and builds the runbooks.
func (c *Config) buildRunbooks(p *Problems) []policy.Runbook {
	if len(c.Runbooks) > maxRunbooks {
		p.addf("runbooks", "%d runbooks: at most %d", len(c.Runbooks), maxRunbooks)
	}
	var out []policy.Runbook
	seen := map[string]bool{}
	for i, rc := range c.Runbooks {
		path := fmt.Sprintf("runbooks[%d]", i)
		r := policy.Runbook{Name: strings.TrimSpace(rc.Name), Title: strings.TrimSpace(rc.Title), EveryIncident: rc.EveryIncident}
		checkName(p, path, r.Name, seen, "steps are named NAME/N")
		if r.Title == "" {
			r.Title = r.Name
		}
		r.Matchers = parseMatchers(p, path, rc.Matchers)
		for j, sc := range rc.Scenarios {
			if _, ok := c.Drills.Scenarios[sc]; !ok {
				p.addf(fmt.Sprintf("%s.scenarios[%d]", path, j), "%q is not a scenario of drills.scenarios", sc)
			}
			r.Scenarios = append(r.Scenarios, sc)
		}
		switch n := len(rc.Steps); {
		case n == 0:
			p.addf(path+".steps", "required: at least one step")
		case n > maxRunbookSteps:
			p.addf(path+".steps", "%d steps: at most %d", n, maxRunbookSteps)
		}
		for j, sc := range rc.Steps {
			spath := fmt.Sprintf("%s.steps[%d]", path, j)
			st := policy.RunbookStep{Text: strings.TrimSpace(sc.Text), Role: sc.Role, Link: strings.TrimSpace(sc.Link)}
			switch {
			case st.Text == "":
				p.addf(spath+".text", "required")
			case len(st.Text) > maxStepText:
				p.addf(spath+".text", "%d bytes: at most %d", len(st.Text), maxStepText)
			}
			if st.Role != "" && st.Role != policy.RoleRecovery && st.Role != policy.RoleComms {
				p.addf(spath+".role", "%q: want recovery, comms, or none", st.Role)
			}
			if st.Link != "" {
				if u, err := url.Parse(st.Link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					p.addf(spath+".link", "%q is not an absolute http(s) URL", st.Link)
				}
			}
			r.Steps = append(r.Steps, st)
		}
		out = append(out, r)
	}
	return out
}

// buildHeartbeats checks and builds the dead-man's switch.
func (c *Config) buildHeartbeats(p *Problems) []policy.Heartbeat {
	var out []policy.Heartbeat
	seen := map[string]bool{}
	for i, hc := range c.Heartbeats {
		path := fmt.Sprintf("heartbeats[%d]", i)
		h := policy.Heartbeat{Name: strings.TrimSpace(hc.Name), Interval: hc.Interval, Grace: hc.Grace, Team: hc.Team}
		checkName(p, path, h.Name, seen, "it is a path segment: POST /api/v1/heartbeats/NAME")
		if h.Interval <= 0 {
			p.addf(path+".interval", "required: a positive duration, how often it pings at least")
		}
		if h.Grace < 0 {
			p.addf(path+".grace", "must not be negative, got %s", h.Grace)
		}
		sev, err := policy.ParseSeverity(firstOf(hc.Severity, "S2"))
		if err != nil {
			p.addf(path+".severity", "%v", err)
		}
		h.Severity = sev
		h.Matchers = parseMatchers(p, path, hc.Matchers)
		out = append(out, h)
	}
	return out
}

// checkName checks the name of a list entry: given, once, and made of
// characters that can stand in a path or an id (why says where).
func checkName(p *Problems, path, name string, seen map[string]bool, why string) {
	switch {
	case name == "":
		p.addf(path+".name", "required")
	case seen[name]:
		p.addf(path+".name", "%q is given twice", name)
	case strings.ContainsAny(name, "/?#% \t\r\n"):
		p.addf(path+".name", "%q: letters, digits, - _ . only (%s)", name, why)
	}
	seen[name] = true
}

// parseMatchers parses the Alertmanager label matchers at path.matchers.
func parseMatchers(p *Problems, path string, specs []string) labels.Matchers {
	var out labels.Matchers
	for j, ms := range specs {
		m, err := labels.ParseMatcher(ms)
		if err != nil {
			p.addf(fmt.Sprintf("%s.matchers[%d]", path, j), "%q: %v", ms, err)
			continue
		}
		out = append(out, m)
	}
	return out
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// resolveSecret checks a secret given inline (key) or in a file (key_file)
// and, for a file, reads it into value. fromFile remembers that value came
// from the file, so that Validate can run again.
func resolveSecret(p *Problems, path, key string, value *Secret, file string, fromFile *bool, required bool) {
	switch {
	case *value != "" && file != "" && !*fromFile:
		p.addf(path, "set %s or %s_file, not both", key, key)
	case file != "":
		// Read again on every Validate: the file may have changed.
		*value, *fromFile = "", true
		b, err := os.ReadFile(file) //nolint:gosec // the operator names the secret file
		if err != nil {
			p.addf(path+"."+key+"_file", "%v", err)
			return
		}
		*value = Secret(strings.TrimSpace(string(b)))
		if *value == "" {
			p.addf(path+"."+key+"_file", "%s holds no %s", file, key)
		}
	case *value == "" && required:
		p.addf(path, "%s or %s_file is required", key, key)
	}
}

func (d *DrillsConfig) validate(p *Problems) {
	for _, name := range slices.Sorted(maps.Keys(d.Scenarios)) {
		sc, path := d.Scenarios[name], "drills.scenarios."+name
		if strings.TrimSpace(sc.Title) == "" {
			p.addf(path+".title", "required")
		}
		if _, err := policy.ParseSeverity(sc.Severity); err != nil {
			p.addf(path+".severity", "%v", err)
		}
	}
	seen := map[string]bool{}
	for i, sd := range d.Schedule {
		path := fmt.Sprintf("drills.schedule[%d]", i)
		checkName(p, path, strings.TrimSpace(sd.Name), seen, "it names the drills it starts")
		if _, ok := d.Scenarios[sd.Scenario]; !ok {
			p.addf(path+".scenario", "%q is not a scenario of drills.scenarios", sd.Scenario)
		}
		if _, err := policy.ParseCron(sd.Cron); err != nil {
			p.addf(path+".cron", "%v", err)
		}
		if sd.TimeZone != "" {
			if _, err := time.LoadLocation(sd.TimeZone); err != nil {
				p.addf(path+".time_zone", "%q is not an IANA time zone such as Europe/Berlin", sd.TimeZone)
			}
		}
		if strings.TrimSpace(sd.Organiser) == "" {
			p.addf(path+".organiser", "required: who the drill is declared by (and, for a surprise drill, the only one who sees it scheduled)")
		}
	}
}

// ScheduleZone is the zone a scheduled drill's cron line is read in: its
// own, else the display zone, else UTC.
func (c *Config) ScheduleZone(sd DrillScheduleConfig) (*time.Location, error) {
	if sd.TimeZone != "" {
		return time.LoadLocation(sd.TimeZone)
	}
	if loc := c.DisplayZone(); loc != nil {
		return loc, nil
	}
	return time.UTC, nil
}

// checkHostName checks an allowed_hosts entry: a host name or an IP
// address as a Host header carries it, without scheme, port or path.
func checkHostName(host string) error {
	switch {
	case host == "":
		return errors.New("must not be empty")
	case net.ParseIP(strings.Trim(host, "[]")) != nil:
		return nil
	case strings.ContainsAny(host, ":/@?#[] \t"):
		return fmt.Errorf("%q is not a host name: write the name alone, such as responder.example.com (no scheme, port or path)", host)
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return fmt.Errorf("%q is not a host name: write the name alone, such as responder.example.com", host)
		}
	}
	return nil
}

// HostsAllowed are the names and addresses a request's Host may carry
// besides loopback ones: http.allowed_hosts, http.public_url's host, and the
// listen address's host (unless it is every interface).
func (c *Config) HostsAllowed() []string {
	hosts := append([]string(nil), c.HTTP.AllowedHosts...)
	if u, err := url.Parse(c.ExternalURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if host, _, err := net.SplitHostPort(c.Listen); err == nil && host != "" {
		hosts = append(hosts, host)
	}
	return hosts
}
