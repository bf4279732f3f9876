// Package integrations declares what a notifier is and what it is given,
// how a delivery failure is classified, and holds the notifier that needs no
// vendor: the log. Vendor packages (slack, email, zoom, opsgenie) live below
// it and import only this package. Retrying, backoff and rate limits are not
// here: the outbox dispatcher does them, in one place, for every vendor.
package integrations

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// Channels of the outbox: the Name of the notifier that delivers an intent.
const (
	ChannelLog      = "log"
	ChannelSlack    = "slack"
	ChannelEmail    = "email"
	ChannelZoom     = "zoom"
	ChannelOpsGenie = "opsgenie"
)

// Events a message can be about.
const (
	EventOpened          = "opened"           // an incident opened: the root announcement
	EventAlertJoined     = "alert_joined"     // alerts joined (Lines lists them when collapsed)
	EventSeverityRaised  = "severity_raised"  // severity went up
	EventSeverityLowered = "severity_lowered" // a person lowered the severity
	// EventEscalated: the incident reached a severity routed to another
	// Slack channel, which gets a root pointing at the incident's thread.
	EventEscalated    = "escalated"
	EventAcknowledged = "acknowledged"
	EventReopened     = "reopened"
	EventNote         = "note"
	EventResolved     = "resolved"
	EventRootUpdate   = "root_update" // Slack: edit the root message to show the final state
	EventCustomer     = "customer"    // tell customer engineering (their channel, their list)
	EventBridge       = "bridge"      // Zoom: create the incident's meeting
	EventPage         = "page"        // OpsGenie: get a responder's phone to ring
	EventClose        = "close"       // OpsGenie: close the alert Responder created
	// EventAddResponder: a person asked for someone else to be paged on
	// the alert Responder already created (Target names them).
	EventAddResponder = "add_responder"
)

// IsPage reports whether event rings someone's phone: the page of an
// incident, or a responder added to its alert.
func IsPage(event string) bool { return event == EventPage || event == EventAddResponder }

// Responder types a pager notifies.
var ResponderTypes = []string{"user", "team", "escalation", "schedule"}

// Responder is whom a page is for, written "type:name" in a page's Target
// and in requests: "team:sre", "user:maria@example.com".
type Responder struct {
	Type string // user, team, escalation or schedule
	Name string // a user's name (email) or the team's, schedule's, escalation's
}

// String is "type:name".
func (r Responder) String() string { return r.Type + ":" + r.Name }

// ParseResponder reads "type:name".
func ParseResponder(s string) (Responder, error) {
	typ, name, ok := strings.Cut(strings.TrimSpace(s), ":")
	typ, name = strings.TrimSpace(typ), strings.TrimSpace(name)
	switch {
	case !ok || name == "":
		return Responder{}, fmt.Errorf("%q: write type:name, such as team:sre or user:maria@example.com", Shorten(s, 64))
	case !slices.Contains(ResponderTypes, typ):
		return Responder{}, fmt.Errorf("%q: the type %q is not one of %s", Shorten(s, 64), Shorten(typ, 32), strings.Join(ResponderTypes, ", "))
	case len(name) > 100 || strings.ContainsFunc(name, unicode.IsControl):
		return Responder{}, fmt.Errorf("%q: a name of at most 100 characters, without control characters", Shorten(s, 64))
	}
	return Responder{Type: typ, Name: name}, nil
}

// Incident is what a notifier may show about an incident: a snapshot taken
// when the message is delivered, so it carries what is known then (a Zoom
// link created a moment earlier, the final state at resolution).
type Incident struct {
	ID             string
	Title          string
	Description    string
	Severity       string // S1..S4
	Status         string // open, acknowledged, resolved
	Source         string // alertmanager, opsgenie, manual, drill
	DedupKey       string // the group key or OpsGenie alias
	Team           string
	Labels         map[string]string
	RunbookURL     string
	SourceURL      string // where the alert came from (Alertmanager generatorURL)
	ZoomURL        string
	URL            string // the incident in Responder (external_url)
	CustomerImpact bool
	Drill          bool
	OutOfHours     bool
	CreatedAt      time.Time
	AcknowledgedBy string
	ResolvedAt     *time.Time
	ResolvedBy     string
	Summary        string
	AlertsFiring   int
	AlertsTotal    int
	// What an incident's root message shows of its state, filled in for
	// the messages that show it (Slack's root and its edits): the roles,
	// the ETA, the firing alerts (the first few, one line each) and who
	// was paged, through what, and how that went.
	RecoveryLead string
	CommsLead    string
	ETA          *time.Time
	FiringAlerts []string
	Paged        []string
	// NextStepID and NextStep are the first open step of the incident's
	// runbook checklist (RUNBOOK/N and its text); empty when none.
	NextStepID string
	NextStep   string
	// SlackChannel and SlackTS are the incident's Slack thread (its
	// root's channel ID and ts), once posted.
	SlackChannel string
	SlackTS      string
}

// Message is one delivery to one target.
type Message struct {
	// Key identifies the delivery; it is the same on every retry, so a
	// vendor that supports it can use it to drop duplicates (an email's
	// Message-ID, for instance).
	Key string
	// Covers are the keys of the other deliveries this message carries
	// (alert_joined replies collapsed into one): a vendor that can be asked
	// whether a delivery was made finds any of them in it.
	Covers []string
	Event  string
	// Text says what happened in one line, e.g. "acknowledged by maria".
	Text string
	// Lines, when set, are the collapsed events of a storm, one per line.
	Lines []string
	// Target is where it goes: a Slack channel, a comma-separated list of
	// email addresses, an OpsGenie responder ("team:sre").
	Target string
	// Thread is the Slack root message's ts for replies and root updates;
	// empty for a root message.
	Thread string
	At     time.Time
	By     string
	// Mention is who the message calls on (Slack): a person's name or Slack
	// user ID, or "channel"; empty for nobody.
	Mention string
	// ThreadLink is a link to the incident's thread, for a message posted
	// elsewhere (Slack: set by the notifier from the thread's permalink).
	ThreadLink string
	Incident   Incident
}

// Receipt is what a delivery hands back for the messages after it.
type Receipt struct {
	Channel string // Slack: the channel ID the root message went to
	Thread  string // Slack: the root message's ts
	JoinURL string // Zoom: the meeting's join link
}

// Notifier delivers messages to one channel (log, slack, email, zoom,
// opsgenie). It tries once: it does not retry or sleep. A failure it
// returns says whether trying again may help (see Temporary, Permanent).
type Notifier interface {
	Name() string
	Notify(ctx context.Context, m Message) (Receipt, error)
}

// DeliveryError is a failed delivery and whether it is worth retrying.
type DeliveryError struct {
	Err        error
	Retryable  bool
	RetryAfter time.Duration // the vendor's Retry-After; 0 when it gave none
}

func (e *DeliveryError) Error() string { return e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// Temporary marks err as worth retrying, after retryAfter when the vendor
// said so (429, 503 with Retry-After), else after the dispatcher's backoff.
func Temporary(err error, retryAfter time.Duration) error {
	return &DeliveryError{Err: err, Retryable: true, RetryAfter: retryAfter}
}

// Permanent marks err as not worth retrying (a 400, a bad channel, a
// refused address): the delivery is marked failed at once.
func Permanent(err error) error { return &DeliveryError{Err: err} }

// Retryable classifies a delivery error. Errors a vendor classified say so
// themselves; timeouts, refused or reset connections and other network
// errors are retryable; anything else is not.
func Retryable(err error) (retry bool, after time.Duration) {
	if err == nil {
		return false, 0
	}
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.Retryable, de.RetryAfter
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) {
		return true, 0
	}
	var oe *net.OpError
	return errors.As(err, &oe), 0
}

// HTTPStatus classifies an HTTP answer: 429 and 5xx are retryable (with the
// Retry-After header when given), other 4xx are not. It returns nil for 2xx.
func HTTPStatus(status int, header http.Header, what string) error {
	if status >= 200 && status < 300 {
		return nil
	}
	err := fmt.Errorf("%s: HTTP %d %s", what, status, http.StatusText(status))
	if status == http.StatusTooManyRequests || status >= 500 {
		return Temporary(err, RetryAfter(header.Get("Retry-After"), time.Now()))
	}
	return Permanent(err)
}

// RetryAfter parses a Retry-After value: delay seconds or an HTTP date.
// It returns 0 when the value is absent or unreadable.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		// A number of seconds beyond what a Duration holds would wrap
		// negative: take it as the longest wait there is.
		if secs > int(math.MaxInt64/int64(time.Second)) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// IsLoopback reports whether host (a name or an IP, without port) is this
// machine: vendors allow plain http only to such a host (a test's fake).
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LogNotifier writes every message to the daemon's log, so that a daemon
// with no vendor configured still shows what it would have sent: one line
// per message, then, for each preview that applies, what that vendor would
// receive (the Slack post, the mail's subject and first lines, the page).
type LogNotifier struct {
	log      zerolog.Logger
	previews []Preview
}

// Preview renders, for the log, what a vendor would receive for a message:
// a few lines of text, or "" when the vendor would receive nothing for it.
type Preview struct {
	Vendor string // slack, email, opsgenie
	Render func(Message) string
}

var _ Notifier = (*LogNotifier)(nil)

// NewLogNotifier logs through l with the field integration=log, with the
// previews given (each vendor package offers one).
func NewLogNotifier(l zerolog.Logger, previews ...Preview) *LogNotifier {
	return &LogNotifier{log: l.With().Str("integration", "log").Logger(), previews: previews}
}

// Name is "log".
func (n *LogNotifier) Name() string { return "log" }

// Notify logs m at info level, then each preview of it.
func (n *LogNotifier) Notify(_ context.Context, m Message) (Receipt, error) {
	inc := m.Incident
	ev := n.log.Info().
		Str("incident", inc.ID).
		Str("event", m.Event).
		Str("severity", inc.Severity).
		Str("status", inc.Status).
		Str("title", inc.Title).
		Bool("drill", inc.Drill).
		Time("at", m.At)
	if inc.URL != "" {
		ev = ev.Str("url", inc.URL)
	}
	if inc.ZoomURL != "" {
		// Without the query: a join link may carry the meeting's passcode.
		ev = ev.Str("zoom", stripQuery(inc.ZoomURL))
	}
	if len(m.Lines) > 0 {
		ev = ev.Strs("lines", m.Lines)
	}
	if len(inc.Labels) > 0 {
		keys := make([]string, 0, len(inc.Labels))
		for k := range inc.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := zerolog.Dict()
		for _, k := range keys {
			d = d.Str(k, inc.Labels[k])
		}
		ev = ev.Dict("labels", d)
	}
	msg := m.Text
	if inc.Drill {
		msg = "[DRILL] " + msg // as on every other channel
	}
	ev.Msg(msg)
	if inc.ZoomURL != "" {
		m.Incident.ZoomURL = stripQuery(inc.ZoomURL)
	}
	for _, p := range n.previews {
		text := strings.TrimRight(p.Render(m), "\n")
		if text == "" {
			continue
		}
		n.log.Info().Str("incident", inc.ID).Str("event", m.Event).Str("preview", p.Vendor).
			Msg(p.Vendor + " would receive:\n    " + strings.ReplaceAll(text, "\n", "\n    "))
	}
	return Receipt{}, nil
}

func stripQuery(u string) string { return strings.SplitN(u, "?", 2)[0] }

// Shorten cuts s to at most n bytes, on a character boundary, marking the
// cut with how long s was: for outside text that goes into a message or a
// record (an id taken from a path, a vendor's error page).
func Shorten(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes)", len(s))
}
