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
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/responder-sre/responder/integrations"
)

// DefaultAPIURL is Slack's Web API base URL.
const DefaultAPIURL = "https://slack.com/api/"

// DefaultTimeout bounds one API call when Config.HTTPClient is nil.
const DefaultTimeout = 10 * time.Second

// MetadataEventType is the event_type of the message metadata Responder
// attaches to every message it posts. Its event_payload carries the
// delivery's key ("key") and the incident ("incident"): it is how Find tells
// whether a post whose answer was lost reached Slack.
const MetadataEventType = "responder_notification"

// Find's search bounds: messages from findLookBack before the delivery
// was queued (clocks differ), at most findPages pages of findPageSize.
const (
	findLookBack = 15 * time.Minute
	findPages    = 10
	findPageSize = 200
	listPages    = 20
)

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
	// Clock writes the times in messages: UTC, with the local time of
	// display.time_zone beside it.
	Clock integrations.Clock
	// Buttons puts the front door's buttons (Acknowledge, the roles, Post
	// update, Resolve) on an unresolved incident's root, when Slack's
	// interactivity is on.
	Buttons bool
}

// Notifier posts to Slack. It is safe for concurrent use.
type Notifier struct {
	api     *slackgo.Client
	clock   integrations.Clock
	buttons bool // Config.Buttons

	mu  sync.Mutex
	ids map[string]string // channel name without "#" -> ID, learned from answers
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

	return &Notifier{api: client(cfg), clock: cfg.Clock, buttons: cfg.Buttons, ids: map[string]string{}}, nil
}

// client is the slack-go client of a checked cfg: our HTTP client (with a
// timeout, never following a redirect), the answers recorded.
func client(cfg Config) *slackgo.Client {
	hc := &http.Client{Timeout: DefaultTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return slackgo.New(cfg.Token,
		slackgo.OptionAPIURL(cfg.APIURL),
		slackgo.OptionHTTPClient(answerRecorder{client: hc}),
	)
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
	case m.Event == integrations.EventEscalated:
		return n.postEscalated(ctx, m)
	default:
		return n.postReply(ctx, m)
	}
}

// postEscalated posts, in the channel the incident's new severity is
// routed to, a root that points at the incident's thread, where the
// conversation goes on. The receipt is dropped: the thread stays where it
// is.
func (n *Notifier) postEscalated(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	if inc := m.Incident; inc.SlackChannel != "" && inc.SlackTS != "" {
		actx, ans := withAnswer(ctx)
		p, err := n.api.GetPermalinkContext(actx, &slackgo.PermalinkParameters{Channel: inc.SlackChannel, Ts: inc.SlackTS})
		if err != nil {
			return integrations.Receipt{}, classify("slack chat.getPermalink", err, ans)
		}
		m.ThreadLink = p
	}
	if _, err := n.postRoot(ctx, m); err != nil {
		return integrations.Receipt{}, err
	}
	return integrations.Receipt{}, nil
}

func (n *Notifier) postRoot(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	blocks, text := rootMessage(m, n.clock, n.buttons)
	ctx, ans := withAnswer(ctx)
	ch, ts, err := n.api.PostMessageContext(ctx, m.Target, withMetadata(m,
		slackgo.MsgOptionBlocks(blocks...),
		slackgo.MsgOptionText(text, false),
		slackgo.MsgOptionDisableLinkUnfurl(),
		slackgo.MsgOptionDisableMediaUnfurl(),
	)...)
	op := "slack chat.postMessage to " + m.Target
	if err != nil {
		return integrations.Receipt{}, classify(op, err, ans)
	}
	if ch == "" || ts == "" {
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("%s: answer has no channel or ts", op))
	}
	n.learn(m.Target, ch)
	return integrations.Receipt{Channel: ch, Thread: ts}, nil
}

// withMetadata adds the delivery's identity to a message's options.
func withMetadata(m integrations.Message, opts ...slackgo.MsgOption) []slackgo.MsgOption {
	if m.Key == "" {
		return opts
	}
	payload := map[string]any{"key": m.Key, "incident": m.Incident.ID}
	if covers := coversOf(m.Covers); covers != "" {
		payload["covers"] = covers
	}
	return append(opts, slackgo.MsgOptionMetadata(slackgo.SlackMetadata{
		EventType:    MetadataEventType,
		EventPayload: payload,
	}))
}

func (n *Notifier) postReply(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	blocks, text := replyMessage(m, n.clock)
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
	ch, _, err := n.api.PostMessageContext(ctx, m.Target, withMetadata(m, opts...)...)
	if err != nil {
		return integrations.Receipt{}, classify("slack chat.postMessage ("+m.Event+") to "+m.Target, err, ans)
	}
	n.learn(m.Target, ch)
	return integrations.Receipt{Channel: ch, Thread: m.Thread}, nil
}

// Find tells whether the message m was posted already: an attempt whose
// answer never came (a crash, a timeout) may have reached Slack. It looks
// for the message whose metadata carries m.Key: in the thread m.Thread for
// a reply (conversations.replies), else among the channel's messages since
// m.At (conversations.history). It returns the found message's receipt, as
// Notify would have. A root_update (an edit) is never looked for: repeating
// it changes nothing.
//
// It needs the channels:history scope (groups:history for a private
// channel) and, for a channel given by name, channels:read (groups:read) to
// learn its ID. Without them Slack refuses and Find returns a permanent
// error: the caller then posts again, which may duplicate the message.
func (n *Notifier) Find(ctx context.Context, m integrations.Message) (integrations.Receipt, bool, error) {
	if m.Key == "" || m.Target == "" || m.Event == integrations.EventRootUpdate {
		return integrations.Receipt{}, false, nil
	}
	oldest := ""
	if !m.At.IsZero() {
		from := m.At.Add(-findLookBack)
		oldest = fmt.Sprintf("%d.%06d", from.Unix(), from.Nanosecond()/1000)
	}
	if m.Thread != "" {
		op := "slack conversations.replies in " + m.Target
		cursor := ""
		for range findPages {
			ctx, ans := withAnswer(ctx)
			msgs, more, next, err := n.api.GetConversationRepliesContext(ctx, &slackgo.GetConversationRepliesParameters{
				ChannelID: m.Target, Timestamp: m.Thread, Cursor: cursor, Limit: findPageSize, Oldest: oldest,
				Inclusive: true, IncludeAllMetadata: true,
			})
			if err != nil {
				return integrations.Receipt{}, false, classify(op, err, ans)
			}
			if found(msgs, m.Key) != "" {
				return integrations.Receipt{Channel: m.Target, Thread: m.Thread}, true, nil
			}
			if !more || next == "" {
				break
			}
			cursor = next
		}
		return integrations.Receipt{}, false, nil
	}
	ch, err := n.channelID(ctx, m.Target)
	if err != nil {
		return integrations.Receipt{}, false, err
	}
	op := "slack conversations.history in " + m.Target
	cursor := ""
	for range findPages {
		ctx, ans := withAnswer(ctx)
		resp, err := n.api.GetConversationHistoryContext(ctx, &slackgo.GetConversationHistoryParameters{
			ChannelID: ch, Cursor: cursor, Limit: findPageSize, Oldest: oldest, Inclusive: true, IncludeAllMetadata: true,
		})
		if err != nil {
			return integrations.Receipt{}, false, classify(op, err, ans)
		}
		if ts := found(resp.Messages, m.Key); ts != "" {
			if m.Event == integrations.EventOpened || m.Event == integrations.EventCustomer {
				return integrations.Receipt{Channel: ch, Thread: ts}, true, nil
			}
			return integrations.Receipt{Channel: ch}, true, nil // a reply posted on its own
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			break
		}
		cursor = resp.ResponseMetaData.NextCursor
	}
	return integrations.Receipt{}, false, nil
}

// found returns the ts of the message whose metadata carries key.
func found(msgs []slackgo.Message, key string) string {
	for _, msg := range msgs {
		md := msg.Metadata
		if md.EventType != MetadataEventType {
			continue
		}
		if md.EventPayload["key"] == key {
			return msg.Timestamp
		}
		covers, _ := md.EventPayload["covers"].(string)
		for c := range strings.SplitSeq(covers, ",") {
			if c == key {
				return msg.Timestamp
			}
		}
	}
	return ""
}

// maxCovers bounds the keys a message's metadata lists besides its own, in
// bytes: Slack documents no size for the metadata, and a refused post
// would cost far more than an unlisted key (at worst a reply posted again
// after a restore).
const maxCovers = 2000

// coversOf lists the keys of the other deliveries of a collapsed reply
// for its metadata, comma-separated (Slack's metadata values are strings,
// numbers, booleans or objects), as many as fit in maxCovers: each is
// found in the message too, after a restore that lost which went out
// together.
func coversOf(keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		if k == "" || strings.Contains(k, ",") || b.Len()+len(k)+1 > maxCovers {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
	}
	return b.String()
}

// learn remembers the ID of a channel given by name.
func (n *Notifier) learn(target, id string) {
	if id == "" || looksLikeID(target) {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids[strings.TrimPrefix(target, "#")] = id
}

// looksLikeID tells a channel ID (C0123ABCD; G, D for private and direct)
// from a name (names are lower case).
func looksLikeID(s string) bool {
	if len(s) < 9 || !strings.ContainsRune("CGD", rune(s[0])) {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// channelID is the ID of the channel target (an ID, "name" or "#name"):
// the conversations methods take only IDs. A name not seen in an answer
// yet is looked up with conversations.list.
func (n *Notifier) channelID(ctx context.Context, target string) (string, error) {
	if looksLikeID(target) {
		return target, nil
	}
	name := strings.TrimPrefix(target, "#")
	n.mu.Lock()
	id, ok := n.ids[name]
	n.mu.Unlock()
	if ok {
		return id, nil
	}
	op := "slack conversations.list for " + target
	cursor := ""
	for range listPages {
		ctx, ans := withAnswer(ctx)
		chans, next, err := n.api.GetConversationsContext(ctx, &slackgo.GetConversationsParameters{
			Cursor: cursor, ExcludeArchived: true, Limit: findPageSize, Types: []string{"public_channel", "private_channel"},
		})
		if err != nil {
			return "", classify(op, err, ans)
		}
		for _, c := range chans {
			if c.Name == name {
				n.learn(target, c.ID)
				return c.ID, nil
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return "", integrations.Permanent(fmt.Errorf("%s: no such channel", op))
}

func (n *Notifier) updateRoot(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	op := "slack chat.update in " + m.Target
	if m.Thread == "" {
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("%s: no root message ts to edit", op))
	}
	blocks, text := rootMessage(m, n.clock, n.buttons)
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
