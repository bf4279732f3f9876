package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// delivery is one attempt at a group of intents (several only when
// alert_joined messages are collapsed into one).
type delivery struct {
	lane    *lane
	group   []*store.Intent
	receipt integrations.Receipt
	err     error
	at      time.Time
	// doubt: whether the vendor has the message is not known after this
	// attempt (it was cut off without an answer, or could not be checked);
	// the next attempt asks the vendor first.
	doubt bool
	// found: the attempt found the message at the vendor (an earlier
	// attempt had delivered it) and sent nothing.
	found bool
	// cancelled: a page whose incident was resolved before it went; it
	// was not sent (see before).
	cancelled bool
	// token is the delivery lease's fencing number the delivery started
	// under (0 on a store of one process); fenced: the lease had passed to
	// another replica when the attempt was to be recorded, so nothing was
	// sent.
	token  uint64
	fenced bool
}

// finder is a notifier that can tell whether a message reached the vendor
// when an attempt's outcome is in doubt (integrations/slack looks for the
// key it put in the message's metadata). Such a notifier's attempts are
// recorded on disk before they are made, so that a crash leaves them in
// doubt rather than forgotten.
type finder interface {
	Find(ctx context.Context, m integrations.Message) (integrations.Receipt, bool, error)
}

func (d *Dispatcher) start(ctx context.Context, l *lane, group []*store.Intent) {
	l.busy = true
	head := group[0]
	d.inFlight[head.Channel]++
	if head.Channel == integrations.ChannelSlack {
		d.slackSending[head.Target] = true
	}
	n := d.notifiers[head.Channel]
	f, _ := n.(finder)
	inDoubt := head.AttemptAt != nil
	// The attempt is recorded before it is made, when the vendor can be
	// asked about it later; copies, as the Run goroutine owns the intents.
	var marks []store.Intent
	if f != nil && !inDoubt {
		at := d.now()
		for _, in := range group {
			c := *in
			c.AttemptAt, c.AttemptKey = &at, head.Key
			marks = append(marks, c)
		}
	}
	// Deliveries outlive a stop request by at most one attempt's timeout,
	// so that their outcome can be written.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout)
	token := d.token
	go func() {
		defer cancel()
		r := delivery{lane: l, group: group, doubt: inDoubt, token: token}
		d.attempt(dctx, &r, n, f, marks)
		r.at = d.now()
		d.results <- r
	}()
}

// attempt makes one delivery: it records the attempt (marks), asks the
// vendor first when an earlier attempt is in doubt, then notifies.
func (d *Dispatcher) attempt(ctx context.Context, r *delivery, n integrations.Notifier, f finder, marks []store.Intent) {
	head := r.group[0]
	if n == nil {
		r.err = integrations.Permanent(fmt.Errorf("no %s integration is configured", head.Channel))
		return
	}
	m, err := d.message(ctx, r.group)
	if err != nil {
		r.err = err
		return
	}
	if err := d.before(ctx, r, marks); err != nil || r.cancelled || r.fenced {
		r.err = err
		return
	}
	if r.doubt && f != nil {
		receipt, found, err := f.Find(ctx, m)
		switch retry, _ := integrations.Retryable(err); {
		case err != nil && retry:
			r.err = fmt.Errorf("check whether an earlier attempt was delivered: %w", err)
			return // still in doubt: asked again next time, never sent blind
		case err != nil:
			d.log.Warn().Str("error", d.errorText(err)).Str("incident", head.IncidentID).Str("channel", head.Channel).Str("event", head.Event).
				Msg("cannot check whether an earlier attempt was delivered: sending again, which may duplicate it")
		case found:
			r.receipt, r.found, r.doubt = receipt, true, false
			return
		}
	}
	r.receipt, r.err = n.Notify(ctx, m)
	// Cut off without an answer: the vendor may have the message.
	r.doubt = f != nil && r.err != nil && unanswered(r.err)
}

// unanswered reports whether a failed attempt may have reached the vendor
// without its answer reaching us: a timeout, or a connection that broke
// after it was made. A refused connection or an answer (an HTTP status, an
// API error) says the message was not taken.
func unanswered(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op != "dial"
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || (errors.As(err, &ne) && ne.Timeout())
}

// message renders a delivery from the incident as it is now.
func (d *Dispatcher) message(ctx context.Context, group []*store.Intent) (integrations.Message, error) {
	head := group[0]
	var snap integrations.Incident
	var inc *store.Incident
	err := d.store.View(ctx, func(tx store.Tx) error {
		var err error
		if inc, err = tx.Incident(head.IncidentID); err != nil {
			return err
		}
		snap = d.snapshot(inc)
		if head.Channel == integrations.ChannelSlack && showsState(head.Event) {
			return rootState(tx, &snap)
		}
		return nil
	})
	if err != nil {
		return integrations.Message{}, integrations.Temporary(fmt.Errorf("read incident %s: %w", head.IncidentID, err), 0)
	}
	m := integrations.Message{
		Key: head.Key, Event: head.Event, Text: head.Text, Target: head.Target,
		At: head.CreatedAt, By: head.By, Mention: head.Mention, Incident: snap,
	}
	if len(group) > 1 {
		for i, in := range group {
			m.Lines = append(m.Lines, in.Text)
			if i > 0 {
				m.Covers = append(m.Covers, in.Key)
			}
		}
		m.Text = "" // the vendor words a collapsed list ("12 more alerts joined:")
	}
	if head.Channel == integrations.ChannelSlack && head.Event != integrations.EventOpened && head.Event != integrations.EventCustomer &&
		head.Event != integrations.EventEscalated {
		switch {
		case inc.SlackTS != "":
			m.Target, m.Thread = inc.SlackChannel, inc.SlackTS
		case head.Event == integrations.EventRootUpdate:
			return m, integrations.Permanent(fmt.Errorf("no root message to update: the announcement was not posted"))
		}
		// Without a root (its post failed), the message stands on its own.
	}
	return m, nil
}

func (d *Dispatcher) snapshot(inc *store.Incident) integrations.Incident {
	return integrations.Incident{
		ID: inc.ID, Title: inc.Title, Description: inc.Description, Severity: inc.Severity,
		Status: string(inc.Status), Source: string(inc.Source), DedupKey: inc.DedupKey, Team: inc.Team,
		Labels: inc.Labels, RunbookURL: inc.RunbookURL, SourceURL: inc.SourceURL, ZoomURL: inc.ZoomURL,
		URL: d.incidentURL(inc.ID), CustomerImpact: inc.CustomerImpact, Drill: inc.Drill, OutOfHours: inc.OutOfHours,
		CreatedAt: inc.CreatedAt, AcknowledgedBy: inc.AcknowledgedBy, ResolvedAt: inc.ResolvedAt,
		ResolvedBy: inc.ResolvedBy, Summary: inc.Summary, AlertsFiring: inc.AlertsFiring, AlertsTotal: inc.AlertsTotal,
		RecoveryLead: inc.Roles.RecoveryLead, CommsLead: inc.Roles.CommsLead, ETA: inc.ETA,
		SlackChannel: inc.SlackChannel, SlackTS: inc.SlackTS,
	}
}

// showsState reports whether a Slack message of this event shows the
// incident's state (a root, or an edit of it).
func showsState(event string) bool {
	return event == integrations.EventOpened || event == integrations.EventRootUpdate || event == integrations.EventCustomer ||
		event == integrations.EventEscalated
}

// maxFiringAlerts is how many firing alerts a root lists by name.
const maxFiringAlerts = 5

// rootState adds what a root shows beyond the incident document: its
// firing alerts (the first few; the count says how many) and its pages.
func rootState(tx store.Tx, snap *integrations.Incident) error {
	alerts, err := tx.Alerts(snap.ID)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		if a.Status != store.AlertFiring {
			continue
		}
		if len(snap.FiringAlerts) == maxFiringAlerts {
			break
		}
		snap.FiringAlerts = append(snap.FiringAlerts, alertLine(a))
	}
	intents, err := tx.IncidentIntents(snap.ID)
	if err != nil {
		return err
	}
	for _, in := range intents {
		if !integrations.IsPage(in.Event) || in.Channel == integrations.ChannelLog {
			continue
		}
		state := "page queued"
		switch {
		case in.State == store.IntentSent && in.SentAt != nil:
			state = "paged at " + in.SentAt.UTC().Format("15:04 UTC")
		case in.State == store.IntentFailed:
			state = "page failed: " + integrations.Shorten(in.LastError, 120)
		case in.State == store.IntentCancelled:
			state = "page cancelled: resolved before it went"
		}
		snap.Paged = append(snap.Paged, in.Target+" through "+in.Channel+": "+state)
	}
	steps, err := tx.Checklist(snap.ID)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if st.State == store.StepOpen {
			snap.NextStepID, snap.NextStep = st.ID, st.Text
			break
		}
	}
	return nil
}

// alertLine names an alert in a line: its name and what tells it apart
// (its summary, else its instance or job).
func alertLine(a store.Alert) string {
	name := a.Labels["alertname"]
	if name == "" {
		name = a.Fingerprint
	}
	switch {
	case a.Annotations["summary"] != "":
		return name + ": " + a.Annotations["summary"]
	case a.Labels["instance"] != "":
		return name + " on " + a.Labels["instance"]
	case a.Labels["job"] != "":
		return name + " (" + a.Labels["job"] + ")"
	}
	return name
}

// before records, in one transaction and before the vendor is called,
// what must be on disk first: on a shared store, that this replica still
// holds the delivery lease (its fencing number), so that one paused past
// its lease sends nothing once another took over; the attempt of a vendor
// that can be asked about it later (marks); and the claim of a page, which
// checks it is still pending: the incident service cancels a page that has
// not gone when its incident resolves (store.IntentCancelled), so a page is
// either claimed here (and closed after, in its lane's order) or cancelled
// there, never sent and then closed for nothing.
func (d *Dispatcher) before(ctx context.Context, r *delivery, marks []store.Intent) error {
	head := r.group[0]
	page := integrations.IsPager(head.Channel) && integrations.IsPage(head.Event)
	if r.token == 0 && len(marks) == 0 && !page {
		return nil
	}
	at := d.now()
	err := d.store.Update(ctx, func(tx store.Tx) error {
		r.cancelled = false
		if err := fence(tx, r.token); err != nil {
			return err
		}
		for i := range marks {
			if err := tx.PutIntent(&marks[i]); err != nil {
				return err
			}
		}
		if !page {
			return nil
		}
		cur, err := tx.Intent(head.Seq)
		if err != nil {
			return err
		}
		if cur.State != store.IntentPending {
			r.cancelled = true
			return nil
		}
		cur.AttemptAt, cur.AttemptKey = &at, cur.Key
		return tx.PutIntent(cur)
	})
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		r.fenced = true
		return nil
	case err != nil:
		// Not attempted: nothing was sent, nothing is in doubt.
		return integrations.Temporary(fmt.Errorf("record the attempt before sending: %w", err), 0)
	}
	return nil
}
