// Package zoom opens an incident's bridge: a Zoom meeting created through
// Zoom's server-to-server OAuth API, whose join link goes back to the caller
// in the Receipt. It tries once and says whether trying again may help; the
// outbox does the retrying.
package zoom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/responder-sre/responder/integrations"
)

// Defaults for the zero fields of Config.
const (
	DefaultTokenURL = "https://zoom.us/oauth/token" //nolint:gosec // a URL, not a credential
	DefaultAPIURL   = "https://api.zoom.us/v2"
	DefaultUser     = "me"
	DefaultTimeout  = 15 * time.Second
)

// Zoom's limits on the fields we send.
const (
	maxTopic  = 200
	maxAgenda = 2000
	// meetingMinutes is the scheduled length. It only informs: a meeting on
	// a licensed host does not end when it runs over.
	meetingMinutes = 60
)

// Config is a Zoom Server-to-Server OAuth app and where to call it.
type Config struct {
	AccountID    string
	ClientID     string
	ClientSecret string
	// TokenURL is the OAuth token endpoint; DefaultTokenURL when empty.
	TokenURL string
	// APIURL is the REST API base, up to and including /v2; DefaultAPIURL
	// when empty.
	APIURL string
	// User hosts the meetings: "me" (the app's owner), a user ID or an
	// email address; DefaultUser when empty.
	User string
	// HTTPClient makes every call, token included. Nil gets a client with a
	// DefaultTimeout timeout; a client without a timeout is copied and given
	// one, because the token request is bounded only by it.
	HTTPClient *http.Client
}

// Notifier creates Zoom meetings for incidents. It is safe for concurrent use.
type Notifier struct {
	meetingsURL string
	hc          *http.Client
	cc          *clientcredentials.Config
	secret      string
	// tokenCtx carries hc to the token source (oauth2.HTTPClient): the
	// source keeps the context it was built with for every later fetch.
	tokenCtx context.Context

	mu   sync.Mutex
	ts   oauth2.TokenSource // caches the token until shortly before it expires
	last *oauth2.Token      // the token ts returned last, to tell a fresh one
}

var _ integrations.Notifier = (*Notifier)(nil)

// New checks cfg and builds a Notifier; it makes no network call. The
// error joins one error per problem, each starting with the field's config
// key (account_id, client_id, client_secret, token_url, api_url, user).
func New(cfg Config) (*Notifier, error) {
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.User == "" {
		cfg.User = DefaultUser
	}
	var errs []error
	for _, f := range []struct{ key, v string }{
		{"account_id", cfg.AccountID}, {"client_id", cfg.ClientID}, {"client_secret", cfg.ClientSecret},
	} {
		if strings.TrimSpace(f.v) == "" {
			errs = append(errs, fmt.Errorf("%s: required", f.key))
		}
	}
	if err := checkURL(cfg.TokenURL); err != nil {
		errs = append(errs, fmt.Errorf("token_url: %w", err))
	}
	if err := checkURL(cfg.APIURL); err != nil {
		errs = append(errs, fmt.Errorf("api_url: %w", err))
	}
	if strings.ContainsAny(cfg.User, "/?#") || strings.TrimSpace(cfg.User) != cfg.User {
		errs = append(errs, fmt.Errorf("user: %q is not a user ID, an email address or \"me\"", cfg.User))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	} else if hc.Timeout == 0 {
		c := *hc
		c.Timeout = DefaultTimeout
		hc = &c
	}
	n := &Notifier{
		meetingsURL: strings.TrimRight(cfg.APIURL, "/") + "/users/" + url.PathEscape(cfg.User) + "/meetings",
		hc:          hc,
		secret:      cfg.ClientSecret,
		cc: &clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     cfg.TokenURL,
			// Zoom's grant; the library lets grant_type be overridden.
			EndpointParams: url.Values{"grant_type": {"account_credentials"}, "account_id": {cfg.AccountID}},
			// Basic credentials, never probing with the secret in the form.
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		tokenCtx: context.WithValue(context.Background(), oauth2.HTTPClient, hc),
	}
	n.ts = n.cc.TokenSource(n.tokenCtx)
	return n, nil
}

// checkURL accepts an absolute https URL, or http to a loopback host (a
// test server): anything else would send the secret or the token in clear.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	case u.Scheme == "http" && !integrations.IsLoopback(u.Hostname()):
		return fmt.Errorf("%q: use https (plain http only to a loopback address)", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: no query or fragment", raw)
	}
	return nil
}

// Name is "zoom".
func (n *Notifier) Name() string { return "zoom" }

// Notify creates the incident's meeting for an EventBridge message and
// returns its join link; any other event is a permanent error. The token
// comes from the cache, or from the token endpoint when it is missing or
// about to expire. A retry after a lost answer may create a second meeting:
// Zoom has no idempotency key, and an unused meeting costs nothing.
func (n *Notifier) Notify(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	if m.Event != integrations.EventBridge {
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("zoom: unsupported event %q", m.Event))
	}
	body, err := json.Marshal(meetingFor(m))
	if err != nil {
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("zoom: encode meeting: %w", err))
	}
	if err := ctx.Err(); err != nil {
		return integrations.Receipt{}, integrations.Temporary(fmt.Errorf("zoom: create meeting: %w", err), 0)
	}
	tok, fresh, err := n.token()
	if err != nil {
		return integrations.Receipt{}, n.tokenError(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.meetingsURL, bytes.NewReader(body))
	if err != nil {
		return integrations.Receipt{}, integrations.Permanent(n.redact(fmt.Errorf("zoom: create meeting: %w", err), tok))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	tok.SetAuthHeader(req)

	resp, err := n.hc.Do(req)
	if err != nil {
		return integrations.Receipt{}, integrations.Temporary(n.redact(fmt.Errorf("zoom: create meeting: %w", err), tok), 0)
	}
	defer func() { _ = resp.Body.Close() }()
	// The answer also holds start_url, a host key: it is read, never kept.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return integrations.Receipt{}, integrations.Temporary(n.redact(fmt.Errorf("zoom: create meeting: read answer: %w", err), tok), 0)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := n.redact(fmt.Errorf("zoom: create meeting: HTTP %d %s%s", resp.StatusCode, http.StatusText(resp.StatusCode), apiDetail(data)), tok)
		if resp.StatusCode == http.StatusUnauthorized {
			n.forget(tok)
			if !fresh {
				// A cached token Zoom no longer takes (revoked, app
				// reactivated): the next attempt fetches a new one.
				return integrations.Receipt{}, integrations.Temporary(err, 0)
			}
		}
		return integrations.Receipt{}, classify(resp.StatusCode, resp.Header, err)
	}
	joinURL, err := joinURL(data)
	if err != nil {
		return integrations.Receipt{}, integrations.Permanent(n.redact(fmt.Errorf("zoom: create meeting: HTTP %d: %w", resp.StatusCode, err), tok))
	}
	return integrations.Receipt{JoinURL: joinURL}, nil
}

// token returns the cached or a new access token, and whether it is new.
func (n *Notifier) token() (*oauth2.Token, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	tok, err := n.ts.Token()
	if err != nil {
		return nil, false, err
	}
	fresh := tok != n.last
	n.last = tok
	return tok, fresh, nil
}

// forget drops tok from the cache, unless another call replaced it already.
func (n *Notifier) forget(tok *oauth2.Token) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last == tok {
		n.ts = n.cc.TokenSource(n.tokenCtx)
		n.last = nil
	}
}

// tokenError classifies a failed token fetch. Zoom's error body carries
// "reason" where OAuth has "error_description", so the message is built here.
func (n *Notifier) tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		code := re.Response.StatusCode
		msg := fmt.Errorf("zoom: token: HTTP %d %s%s", code, http.StatusText(code), tokenDetail(re))
		return classify(code, re.Response.Header, n.redact(msg, nil))
	}
	wrapped := n.redact(fmt.Errorf("zoom: token: %w", err), nil)
	if retry, _ := integrations.Retryable(err); retry {
		return integrations.Temporary(wrapped, 0)
	}
	return integrations.Permanent(wrapped)
}

// classify: 429 and 5xx may pass (after Retry-After when given); any other
// status will not.
func classify(status int, h http.Header, err error) error {
	if status == http.StatusTooManyRequests || status >= 500 {
		return integrations.Temporary(err, integrations.RetryAfter(h.Get("Retry-After"), time.Now()))
	}
	return integrations.Permanent(err)
}

// redact hides the client secret and the access token in err's text. The
// chain stays for errors.Is and errors.As.
func (n *Notifier) redact(err error, tok *oauth2.Token) error {
	secrets := []string{n.secret}
	if tok != nil {
		secrets = append(secrets, tok.AccessToken)
	}
	return &redactedError{err: err, secrets: secrets}
}

type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	s := e.err.Error()
	for _, secret := range e.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<redacted>")
		}
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }

// meeting is the body of POST /users/{userId}/meetings.
type meeting struct {
	Topic string `json:"topic"`
	// Type 2, scheduled, not 1, instant: an instant meeting's ID expires
	// when the meeting ends, so a bridge everyone left for a moment would
	// be dead for the rest of the incident; a scheduled meeting's link
	// works for 30 days after its start time, however often it ends.
	Type      int      `json:"type"`
	StartTime string   `json:"start_time,omitempty"`
	Duration  int      `json:"duration"`
	Timezone  string   `json:"timezone"`
	Agenda    string   `json:"agenda,omitempty"`
	Settings  settings `json:"settings"`
}

type settings struct {
	JoinBeforeHost bool `json:"join_before_host"` // the host is rarely on the bridge first
	JbhTime        int  `json:"jbh_time"`         // 0: join any time before the start
	WaitingRoom    bool `json:"waiting_room"`     // nobody is there to admit people
}

// meetingFor builds the meeting for m: the topic says severity, incident
// and title; the agenda links the incident and its runbook.
func meetingFor(m integrations.Message) meeting {
	inc := m.Incident
	topic := fmt.Sprintf("[%s] %s: %s", inc.Severity, inc.ID, inc.Title)
	if inc.Drill {
		topic = "[DRILL] " + topic
	}
	var agenda []string
	if inc.Drill {
		agenda = append(agenda, "DRILL: an exercise, not a real incident.")
	}
	agenda = append(agenda, fmt.Sprintf("%s [%s] %s", inc.ID, inc.Severity, inc.Title))
	if inc.URL != "" {
		agenda = append(agenda, "Incident: "+inc.URL)
	}
	if inc.RunbookURL != "" {
		agenda = append(agenda, "Runbook: "+inc.RunbookURL)
	}
	start := m.At
	if start.IsZero() {
		start = inc.CreatedAt
	}
	mt := meeting{
		Topic:    truncate(topic, maxTopic),
		Type:     2,
		Duration: meetingMinutes,
		Timezone: "UTC",
		Agenda:   truncate(strings.Join(agenda, "\n"), maxAgenda),
		Settings: settings{JoinBeforeHost: true, JbhTime: 0, WaitingRoom: false},
	}
	if !start.IsZero() {
		mt.StartTime = start.UTC().Format("2006-01-02T15:04:05Z")
	}
	return mt
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

// joinURL reads the join link out of a create-meeting answer.
func joinURL(body []byte) (string, error) {
	var created struct {
		JoinURL string `json:"join_url"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		return "", fmt.Errorf("answer is not a meeting: %w", err)
	}
	u, err := url.Parse(created.JoinURL)
	if created.JoinURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("answer has no join_url")
	}
	return created.JoinURL, nil
}

// apiDetail renders Zoom's error body {"code":124,"message":"..."}.
func apiDetail(body []byte) string {
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	return fmt.Sprintf(": %s (code %d)", truncate(e.Message, 200), e.Code)
}

// tokenDetail renders Zoom's token error body {"reason":"...","error":"..."}.
func tokenDetail(re *oauth2.RetrieveError) string {
	var e struct {
		Reason string `json:"reason"`
		Error  string `json:"error"`
	}
	_ = json.Unmarshal(re.Body, &e)
	if e.Error == "" {
		e.Error = re.ErrorCode
	}
	if e.Reason == "" {
		e.Reason = re.ErrorDescription
	}
	switch {
	case e.Error != "" && e.Reason != "":
		return fmt.Sprintf(": %s (%s)", truncate(e.Error, 100), truncate(e.Reason, 200))
	case e.Error != "":
		return ": " + truncate(e.Error, 100)
	case e.Reason != "":
		return ": " + truncate(e.Reason, 200)
	}
	return ""
}
