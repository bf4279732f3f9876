// Package integrations declares what a notifier is and holds the notifier
// that needs no vendor: the log. Vendor packages (slack, email, zoom,
// opsgenie) live below it and import only this package.
package integrations

import (
	"context"
	"sort"
	"time"

	"github.com/rs/zerolog"
)

// Message is one thing to tell people about an incident.
type Message struct {
	IncidentID string
	Event      string // opened, alert_joined, severity_raised, acknowledged, resolved, reopened, note
	Severity   string
	Status     string
	Title      string
	Text       string
	URL        string // the incident's page
	Labels     map[string]string
	Drill      bool
	At         time.Time
}

// Notifier delivers messages to one channel.
type Notifier interface {
	// Name is the channel name (log, slack, email, ...).
	Name() string
	// Notify delivers one message.
	Notify(ctx context.Context, m Message) error
}

// LogNotifier writes every message to the daemon's log, so that a daemon
// with no vendor configured still shows what it would have sent.
type LogNotifier struct {
	log zerolog.Logger
}

var _ Notifier = (*LogNotifier)(nil)

// NewLogNotifier logs through l with the field integration=log.
func NewLogNotifier(l zerolog.Logger) *LogNotifier {
	return &LogNotifier{log: l.With().Str("integration", "log").Logger()}
}

// Name is "log".
func (n *LogNotifier) Name() string { return "log" }

// Notify logs m at info level.
func (n *LogNotifier) Notify(_ context.Context, m Message) error {
	ev := n.log.Info().
		Str("incident", m.IncidentID).
		Str("event", m.Event).
		Str("severity", m.Severity).
		Str("status", m.Status).
		Str("title", m.Title).
		Bool("drill", m.Drill).
		Time("at", m.At)
	if m.URL != "" {
		ev = ev.Str("url", m.URL)
	}
	if len(m.Labels) > 0 {
		keys := make([]string, 0, len(m.Labels))
		for k := range m.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := zerolog.Dict()
		for _, k := range keys {
			d = d.Str(k, m.Labels[k])
		}
		ev = ev.Dict("labels", d)
	}
	ev.Msg(m.Text)
	return nil
}
