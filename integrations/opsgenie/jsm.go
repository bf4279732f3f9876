package opsgenie

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

	"github.com/responder-sre/responder/integrations"
)

// Jira Service Management Operations, OpsGenie's successor, serves
// OpsGenie's alert API for integrations (create, acknowledge, close, add
// note, by alias, with a GenieKey) under a path of its own on Atlassian's
// API host. This package speaks it with the same SDK, every path prefixed.
// That API cannot add a responder to an alert that exists; JSM's REST API
// can, with an Atlassian account's API token (JSMREST).
const (
	JSMAPIURL        = "api.atlassian.com"
	JSMRESTURL       = "https://api.atlassian.com"
	jsmPathPrefix    = "/jsm/ops/integration"
	jsmRESTPathStart = "/jsm/ops/api/"
)

// JSMConfig is a JSM Operations API integration, whom to page, and,
// optionally, the REST API access that adds responders to an alert.
type JSMConfig struct {
	// APIKey is the key of the JSM "API" integration (GenieKey).
	APIKey string
	// APIURL is the API host, JSMAPIURL when empty; only a loopback host
	// (a test server) may be one without "api" in its name.
	APIURL     string
	Responder  Responder
	HTTPClient *http.Client
	// REST, when set, lets Responder add a responder to an alert that
	// exists (one that came from JSM, or a second person paged on the
	// alert Responder raised). Without it only the responder given when an
	// alert is raised is paged.
	REST *JSMREST
}

// JSMREST is access to the JSM Operations REST API.
type JSMREST struct {
	URL      string // JSMRESTURL when empty; http only to a loopback host
	CloudID  string // the Jira site's cloud id
	Email    string // the Atlassian account the API token belongs to
	APIToken string
}

// NewJSM builds the "jsm" pager. Like New, it makes no network call; its
// error names each problem with its config key.
func NewJSM(cfg JSMConfig) (*Notifier, error) {
	n, err := build(integrations.ChannelJSM, Config{APIKey: cfg.APIKey, APIURL: cfg.APIURL, Responder: cfg.Responder,
		HTTPClient: cfg.HTTPClient}, JSMAPIURL, jsmPathPrefix)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if r := cfg.REST; r != nil {
		rest, rerr := newJSMREST(*r)
		if rerr != nil {
			errs = append(errs, rerr)
		} else if n != nil {
			rest.key = n.key
			n.rest = rest
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return n, nil
}

type jsmREST struct {
	base         string // URL + /jsm/ops/api/<cloud id>/v1
	email, token string
	key          string // the integration key, kept out of errors too
}

func newJSMREST(r JSMREST) (*jsmREST, error) {
	if r.URL == "" {
		r.URL = JSMRESTURL
	}
	var errs []error
	u, err := url.Parse(r.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		errs = append(errs, fmt.Errorf("rest.url: %q is not an http(s) URL such as %s", r.URL, JSMRESTURL))
	case u.Scheme == "http" && !integrations.IsLoopback(u.Hostname()):
		errs = append(errs, fmt.Errorf("rest.url: %q: https only (http is for a test server on loopback)", r.URL))
	}
	if strings.TrimSpace(r.CloudID) == "" || strings.ContainsAny(r.CloudID, "/?# ") {
		errs = append(errs, errors.New("rest.cloud_id: required: the Jira site's cloud id"))
	}
	if !strings.Contains(r.Email, "@") {
		errs = append(errs, errors.New("rest.email: required: the Atlassian account of the API token"))
	}
	if strings.TrimSpace(r.APIToken) == "" {
		errs = append(errs, errors.New("rest.api_token: required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &jsmREST{base: strings.TrimRight(r.URL, "/") + jsmRESTPathStart + url.PathEscape(r.CloudID) + "/v1",
		email: r.Email, token: r.APIToken}, nil
}

// addResponder asks JSM's REST API to add r to the alert with alias. JSM
// answers 202 and does it afterwards, like the integration API.
func (j *jsmREST) addResponder(ctx context.Context, hc *http.Client, alias string, r Responder, note string) error {
	body, err := json.Marshal(map[string]any{"responder": sdkResponder(r), "user": "Responder", "source": "responder", "note": note})
	if err != nil {
		return integrations.Permanent(err)
	}
	u := j.base + "/alerts/" + url.PathEscape(alias) + "/responders?identifierType=alias"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return integrations.Permanent(err)
	}
	req.SetBasicAuth(j.email, j.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return j.fail(fmt.Errorf("jsm: add responder: %w", err))
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	err = integrations.HTTPStatus(resp.StatusCode, resp.Header, "jsm: add responder")
	if err == nil {
		return nil
	}
	var answer struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(msg, &answer) == nil && answer.Message != "" {
		err = fmt.Errorf("%w: %s", err, truncate(answer.Message, 200))
	}
	return j.fail(err)
}

// fail keeps the token and the integration key out of err, and whether it
// is worth retrying.
func (j *jsmREST) fail(err error) error {
	retry, after := integrations.Retryable(err)
	e := &redactedError{err: &redactedError{err: err, secret: j.token}, secret: j.key}
	if retry {
		return integrations.Temporary(e, after)
	}
	return integrations.Permanent(e)
}

// prefixPath puts every request of the SDK under prefix.
type prefixPath struct {
	prefix string
	base   http.RoundTripper
}

func (t prefixPath) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = t.prefix + r.URL.Path
	if r.URL.RawPath != "" {
		r2.URL.RawPath = t.prefix + r.URL.RawPath
	}
	return t.base.RoundTrip(r2)
}
