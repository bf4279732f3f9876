// Package slack keeps an incident's Slack thread: one root announcement per
// incident, every later change as a reply in that thread, and an edit of the
// root when the incident ends so that the channel shows its final state.
//
// It uses a bot token (scope chat:write) through slack-go. Like every vendor
// package it tries once and only says whether a failure is worth retrying;
// rate limits, backoff and retries are the outbox dispatcher's.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/responder-sre/responder/integrations"
)

// DefaultAPIURL is Slack's Web API base URL.
const DefaultAPIURL = "https://slack.com/api/"

// DefaultTimeout bounds one API call when Config.HTTPClient is nil.
const DefaultTimeout = 10 * time.Second

// Config is what the Slack notifier needs.
type Config struct {
	// Token is the bot token (xoxb-...) of the Slack app; a user token
	// (xoxp-...) works too. It is never logged nor put in an error.
	Token string
	// APIURL is the Web API base URL, ending with "/"; DefaultAPIURL when
	// empty. Tests point it at slacktest.
	APIURL string
	// HTTPClient makes the calls; when nil, a client with DefaultTimeout.
	// Its redirect policy is replaced: a redirect is never followed, since
	// slack-go sends the token in the request body.
	HTTPClient *http.Client
}

// Notifier posts to Slack. It is safe for concurrent use.
type Notifier struct {
	api *slackgo.Client
}

var _ integrations.Notifier = (*Notifier)(nil)

// New checks cfg and builds a notifier. It makes no network call.
func New(cfg Config) (*Notifier, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	var problems []error
	if err := checkToken(cfg.Token); err != nil {
		problems = append(problems, err)
	}
	if err := checkAPIURL(cfg.APIURL); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("slack config: %w", errors.Join(problems...))
	}

	hc := &http.Client{Timeout: DefaultTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	api := slackgo.New(cfg.Token,
		slackgo.OptionAPIURL(cfg.APIURL),
		slackgo.OptionHTTPClient(answerRecorder{client: hc}),
	)
	return &Notifier{api: api}, nil
}

func checkToken(tok string) error {
	switch {
	case tok == "":
		return errors.New("token is empty: set the bot token (xoxb-...) of the Slack app")
	case strings.TrimSpace(tok) != tok || strings.ContainsAny(tok, " \t\r\n"):
		return errors.New("token contains white space (a trailing newline in token_file?)")
	case strings.HasPrefix(tok, "xapp-"):
		return errors.New("token is an app-level token (xapp-), which cannot post messages: use the bot token (xoxb-)")
	case strings.HasPrefix(tok, "https://hooks.slack.com/"):
		return errors.New("token is an incoming-webhook URL, not a token: use the bot token (xoxb-)")
	}
	return nil
}

func checkAPIURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("api_url %q is not a URL", raw)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("api_url %q must be an absolute http or https URL", raw)
	case u.Host == "":
		return fmt.Errorf("api_url %q has no host", raw)
	case u.User != nil:
		return errors.New("api_url must not carry credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("api_url %q must not have a query or fragment", raw)
	case !strings.HasSuffix(u.Path, "/"):
		return fmt.Errorf("api_url %q must end with \"/\" (e.g. %q)", raw, DefaultAPIURL)
	}
	return nil
}

// Name is "slack".
func (n *Notifier) Name() string { return "slack" }

// Notify delivers m once.
//
//   - opened or customer without a thread: a root announcement in the channel
//     m.Target (a "#name" or an ID); the receipt carries the channel ID and
//     the root's ts.
//   - root_update: edits the root (channel ID m.Target, ts m.Thread) to show
//     the incident as it is now, e.g. resolved.
//   - any other event: a reply in the thread m.Thread. Without a thread
//     (the root could not be posted) it goes to the channel on its own,
//     naming the incident.
func (n *Notifier) Notify(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	if m.Target == "" {
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("slack %s for %s: no channel", m.Event, m.Incident.ID))
	}
	switch {
	case m.Event == integrations.EventRootUpdate:
		return n.updateRoot(ctx, m)
	case m.Thread == "" && (m.Event == integrations.EventOpened || m.Event == integrations.EventCustomer):
		return n.postRoot(ctx, m)
	default:
		return n.postReply(ctx, m)
	}
}

func (n *Notifier) postRoot(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	blocks, text := rootMessage(m)
	ctx, ans := withAnswer(ctx)
	ch, ts, err := n.api.PostMessageContext(ctx, m.Target,
		slackgo.MsgOptionBlocks(blocks...),
		slackgo.MsgOptionText(text, false),
		slackgo.MsgOptionDisableLinkUnfurl(),
		slackgo.MsgOptionDisableMediaUnfurl(),
	)
	op := "slack chat.postMessage to " + m.Target
	if err != nil {
		return integrations.Receipt{}, classify(op, err, ans)
	}
	if ch == "" || ts == "" {
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("%s: answer has no channel or ts", op))
	}
	return integrations.Receipt{Channel: ch, Thread: ts}, nil
}

func (n *Notifier) postReply(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	blocks, text := replyMessage(m)
	opts := []slackgo.MsgOption{
		slackgo.MsgOptionBlocks(blocks...),
		slackgo.MsgOptionText(text, false),
		slackgo.MsgOptionDisableLinkUnfurl(),
		slackgo.MsgOptionDisableMediaUnfurl(),
	}
	if m.Thread != "" {
		opts = append(opts, slackgo.MsgOptionTS(m.Thread))
	}
	ctx, ans := withAnswer(ctx)
	ch, _, err := n.api.PostMessageContext(ctx, m.Target, opts...)
	if err != nil {
		return integrations.Receipt{}, classify("slack chat.postMessage ("+m.Event+") to "+m.Target, err, ans)
	}
	return integrations.Receipt{Channel: ch, Thread: m.Thread}, nil
}

func (n *Notifier) updateRoot(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	op := "slack chat.update in " + m.Target
	if m.Thread == "" {
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("%s: no root message ts to edit", op))
	}
	blocks, text := rootMessage(m)
	ctx, ans := withAnswer(ctx)
	ch, ts, _, err := n.api.UpdateMessageContext(ctx, m.Target, m.Thread,
		slackgo.MsgOptionBlocks(blocks...),
		slackgo.MsgOptionText(text, false),
	)
	if err != nil {
		return integrations.Receipt{}, classify(op, err, ans)
	}
	if ch == "" {
		ch = m.Target
	}
	if ts == "" {
		ts = m.Thread
	}
	return integrations.Receipt{Channel: ch, Thread: ts}, nil
}

// answer is the HTTP status and header of a call's response, kept because
// slack-go drops them from some errors (a 429 whose Retry-After is not a
// number comes back as a bare strconv error, a 503's Retry-After is lost).
type answer struct {
	status int
	header http.Header
}

type answerKey struct{}

func withAnswer(ctx context.Context) (context.Context, *answer) {
	a := &answer{}
	return context.WithValue(ctx, answerKey{}, a), a
}

// answerRecorder is the HTTP client slack-go calls through: it records the
// response status and header on the call's answer.
type answerRecorder struct {
	client *http.Client
}

func (r answerRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.client.Do(req) //nolint:gosec // the URL is api_url from the operator's config plus a method name
	if a, ok := req.Context().Value(answerKey{}).(*answer); ok && resp != nil {
		a.status = resp.StatusCode
		a.header = resp.Header.Clone()
	}
	return resp, err
}

// temporaryAPIErrors are Slack error codes (in an ok:false answer) that say
// Slack could not do it now, not that the request is wrong.
var temporaryAPIErrors = map[string]bool{
	"ratelimited":         true,
	"rate_limited":        true,
	"fatal_error":         true,
	"internal_error":      true,
	"service_unavailable": true,
	"request_timeout":     true,
}

// classify wraps err with op and says whether it is worth retrying.
func classify(op string, err error, ans *answer) error {
	wrapped := fmt.Errorf("%s: %w", op, err)
	retryAfter := func() time.Duration {
		if ans == nil || ans.header == nil {
			return 0
		}
		return integrations.RetryAfter(ans.header.Get("Retry-After"), time.Now())
	}

	var rl *slackgo.RateLimitedError
	if errors.As(err, &rl) {
		return integrations.Temporary(wrapped, rl.RetryAfter)
	}
	var sc slackgo.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code == http.StatusTooManyRequests || sc.Code >= 500 {
			return integrations.Temporary(wrapped, retryAfter())
		}
		return integrations.Permanent(wrapped)
	}
	if ans != nil && ans.status == http.StatusTooManyRequests {
		// slack-go could not read Retry-After (an HTTP date): err is a
		// strconv error that says nothing of the 429.
		return integrations.Temporary(fmt.Errorf("%s: HTTP 429 Too Many Requests (%w)", op, err), retryAfter())
	}
	var api slackgo.SlackErrorResponse
	if errors.As(err, &api) {
		if temporaryAPIErrors[api.Err] {
			return integrations.Temporary(wrapped, retryAfter())
		}
		return integrations.Permanent(wrapped)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return integrations.Permanent(fmt.Errorf("%s: the answer is not Slack API JSON (is api_url right?): %w", op, err))
	}
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne), errors.As(err, &ue),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return integrations.Temporary(wrapped, 0)
	}
	return integrations.Permanent(wrapped)
}
