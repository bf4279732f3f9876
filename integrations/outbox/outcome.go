package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// finish applies a delivery's outcome to its intents and queues the write.
func (d *Dispatcher) finish(r delivery) {
	head := r.group[0]
	d.inFlight[head.Channel]--
	if head.Channel == integrations.ChannelSlack {
		// The channel's token is taken when the answer comes, so that the
		// next message leaves at least 1/rate after this one arrived.
		delete(d.slackSending, head.Target)
		d.limiter(head.Target).ReserveN(r.at, 1)
	}
	if r.token != d.token || r.fenced {
		// Started under a delivery lease this replica no longer holds: the
		// replica holding it now delivers what is left; nothing is written
		// here (a fenced delivery sent nothing).
		if r.fenced && r.token == d.token {
			d.lostLease()
		}
		d.log.Warn().Str("incident", head.IncidentID).Str("channel", head.Channel).Str("event", head.Event).Bool("sent", !r.fenced).
			Msg("delivery lease lost: its outcome is left to the replica holding the lease")
		return
	}
	if r.cancelled {
		for _, in := range r.group {
			in.State = store.IntentCancelled
		}
		d.log.Info().Str("incident", head.IncidentID).Str("channel", head.Channel).Str("event", head.Event).Str("target", head.Target).
			Msg("page cancelled: the incident was resolved before it went")
		d.sent.WithLabelValues(head.Channel, store.IntentCancelled).Inc()
		d.unsaved = append(d.unsaved, r)
		_ = d.save() // logged; kept for the next round
		return
	}
	retry, after := integrations.Retryable(r.err)
	holds := retry && after > 0
	if holds {
		// A Retry-After speaks for the whole target (a Slack channel, the
		// vendor's API), not just this message.
		d.hold[targetOf(head)] = r.at.Add(after)
	}
	switch {
	case r.err != nil && retry:
		d.failing[targetOf(head)] = true
	case r.err == nil && d.failing[targetOf(head)]:
		delete(d.failing, targetOf(head))
		d.recovered(head, r.at)
	}
	for _, in := range r.group {
		in.Attempts++
		if r.doubt && r.err != nil && retry {
			// In doubt until the vendor is asked: the next attempt asks.
			t := r.at
			in.AttemptAt, in.AttemptKey = &t, head.Key
		} else {
			in.AttemptAt, in.AttemptKey = nil, ""
		}
		switch {
		case r.err == nil:
			t := r.at
			in.State, in.SentAt, in.LastError = store.IntentSent, &t, ""
			if in != head {
				in.MergedInto = head.Seq
			}
		case retry:
			in.LastError = d.errorText(r.err)
			if after <= 0 {
				after = d.backoff(head.Attempts)
			}
			in.NextAt = r.at.Add(after)
			in.HoldsTarget = holds
		default:
			in.State, in.LastError = store.IntentFailed, d.errorText(r.err)
		}
	}
	level := zerolog.InfoLevel
	switch {
	case r.err != nil && retry:
		level = zerolog.WarnLevel
	case r.err != nil:
		level = zerolog.ErrorLevel
	case head.Channel == integrations.ChannelLog:
		level = zerolog.DebugLevel // the log notifier's own line says it all
	}
	d.log.WithLevel(level).Str("error", d.errorText(r.err)).Str("incident", head.IncidentID).Str("channel", head.Channel).Str("event", head.Event).
		Int("attempt", head.Attempts).Int("messages", len(r.group)).Str("state", head.State).
		Func(func(e *zerolog.Event) {
			if head.State == store.IntentPending {
				e.Time("next_attempt", head.NextAt)
			}
			if r.found {
				e.Bool("found_at_vendor", true) // an earlier attempt in doubt had delivered it
			}
			if r.doubt && head.State == store.IntentPending {
				e.Bool("in_doubt", true)
			}
		}).Msg("delivery")
	if r.found {
		d.found.WithLabelValues(head.Channel).Inc()
	}
	if head.State != store.IntentPending {
		d.sent.WithLabelValues(head.Channel, head.State).Add(float64(len(r.group)))
	}
	d.unsaved = append(d.unsaved, r)
	_ = d.save() // logged; kept for the next round
}

// maxErrorText bounds a delivery error as kept on the intent and shown in
// the timeline: enough to say what went wrong, not a vendor's whole page.
const maxErrorText = 500

// errorText is a delivery error as it is kept (on the intent, in the
// timeline, the page, the post-mortem) and logged: secrets removed where
// the text enters, since a vendor may echo the credentials it was sent
// (the token, a Basic id:secret, an SMTP AUTH line), then cut at
// maxErrorText bytes on a character boundary. Empty for no error.
func (d *Dispatcher) errorText(err error) string {
	if err == nil {
		return ""
	}
	return integrations.Shorten(d.cfg.Redactor.Text(err.Error()), maxErrorText)
}

// expire gives up on an intent that waited longer than MaxAge.
func (d *Dispatcher) expire(in *store.Intent, l *lane) {
	l.busy = true // until the outcome is written
	in.State = store.IntentFailed
	in.LastError = fmt.Sprintf("not delivered within max_age %s (last error: %s)", d.cfg.MaxAge, in.LastError)
	d.log.Error().Str("incident", in.IncidentID).Str("channel", in.Channel).Str("event", in.Event).
		Int("attempts", in.Attempts).Msg("notification given up: older than max_age")
	d.sent.WithLabelValues(in.Channel, store.IntentFailed).Inc()
	d.unsaved = append(d.unsaved, delivery{lane: l, group: []*store.Intent{in}, at: d.now()})
	_ = d.save() // logged; kept for the next round
}

// save writes the outcomes not yet written, each with its effects on the
// incident, in one transaction. On failure they stay queued and are tried
// again: a delivery that happened must be recorded, or it would be repeated.
func (d *Dispatcher) save() error {
	if len(d.unsaved) == 0 {
		return nil
	}
	batch := d.unsaved
	err := d.store.Update(context.Background(), func(tx store.Tx) error {
		if err := fence(tx, d.token); err != nil {
			return err
		}
		for _, r := range batch {
			if err := d.apply(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrLeaseLost) {
		d.log.Warn().Int("outcomes", len(batch)).Msg("delivery lease lost: outcomes left to the replica holding it")
		d.lostLease()
		return err
	}
	if err != nil {
		d.log.Warn().Err(err).Int("outcomes", len(batch)).Msg("write delivery outcomes: will retry")
		return err
	}
	d.unsaved = d.unsaved[len(batch):]
	for _, r := range batch {
		// Its outcome is on disk: the finished intents (a prefix of the
		// lane: the head and the replies collapsed with it) leave, and the
		// lane may go on.
		l := r.lane
		for len(l.queue) > 0 && l.queue[0].State != store.IntentPending {
			d.remove(l.queue[0])
			l.queue[0] = nil
			l.queue = l.queue[1:]
		}
		l.busy = false
		if len(l.queue) == 0 {
			delete(d.lanes, l.key)
		} else {
			d.schedule(l, time.Time{})
		}
	}
	d.depth.Store(int64(len(d.pending)))
	return nil
}

// apply writes one delivery's intents and what it changes on the incident:
// the Slack root's thread, the Zoom link, and a timeline line when a
// delivery finishes (log deliveries excepted).
func (d *Dispatcher) apply(tx store.Tx, r delivery) error {
	if r.cancelled {
		return nil // the incident service wrote it so, with its timeline line
	}
	for _, in := range r.group {
		if err := tx.PutIntent(in); err != nil {
			return err
		}
	}
	head := r.group[0]
	if head.State == store.IntentPending || head.Channel == integrations.ChannelLog {
		return nil
	}
	inc, err := tx.Incident(head.IncidentID)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("%s %s to %s: %s", head.Channel, head.Event, head.Target, head.State)
	if len(r.group) > 1 {
		text = fmt.Sprintf("%s %s to %s (%d collapsed into one message): %s", head.Channel, head.Event, head.Target, len(r.group), head.State)
	}
	if head.State == store.IntentFailed {
		text += " (" + head.LastError + ")"
	}
	if head.State == store.IntentSent {
		switch {
		case head.Channel == integrations.ChannelSlack && head.Event == integrations.EventOpened && r.receipt.Thread != "":
			inc.SlackChannel, inc.SlackTS = r.receipt.Channel, r.receipt.Thread
		case head.Channel == integrations.ChannelZoom && r.receipt.JoinURL != "":
			inc.ZoomURL = r.receipt.JoinURL
			text = "Zoom bridge: " + r.receipt.JoinURL
			if err := d.lateBridge(tx, inc, head, r.at); err != nil {
				return err
			}
		}
	}
	if integrations.IsPage(head.Event) && inc.SlackTarget != "" {
		if err := d.pageOutcome(tx, inc, head, r.at); err != nil {
			return err
		}
	}
	if err := tx.AppendTimeline(inc.ID, store.Entry{At: r.at, Kind: store.KindNotification, Text: text, By: "responder"}); err != nil {
		return err
	}
	return tx.PutIncident(inc)
}

// pageOutcome tells the incident's thread how a page went (the people in
// the channel need to know whether someone's phone rang), and edits the
// root, which shows who was paged.
func (d *Dispatcher) pageOutcome(tx store.Tx, inc *store.Incident, page *store.Intent, at time.Time) error {
	text := "paged " + page.Target + " through " + page.Channel
	if page.State == store.IntentFailed {
		text = "the page to " + page.Target + " through " + page.Channel + " failed: " + page.LastError
	}
	for _, event := range []string{integrations.EventNote, integrations.EventRootUpdate} {
		err := tx.Enqueue(&store.Intent{
			IncidentID: inc.ID, Channel: integrations.ChannelSlack, Target: inc.SlackTarget, Event: event,
			Text: text, By: "responder", CreatedAt: at, NextAt: at,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lateBridge gives the Zoom link to those who waited for it and went
// without it (the wait for the bridge is bounded): a line in the incident's
// Slack thread, and a note on the alert of the page, so that the person
// woken up has the bridge too. One still waiting (pending, not in flight)
// will carry the link itself.
func (d *Dispatcher) lateBridge(tx store.Tx, inc *store.Incident, bridge *store.Intent, at time.Time) error {
	waiting := map[uint64]bool{}
	for _, in := range d.waiters[bridge.Seq] {
		if l := d.lanes[laneOf(in)]; in.State == store.IntentPending && l != nil && !l.busy {
			waiting[in.Seq] = true
		}
	}
	intents, err := tx.IncidentIntents(inc.ID)
	if err != nil {
		return err
	}
	for _, in := range intents {
		if in.After != bridge.Seq || waiting[in.Seq] || in.State == store.IntentCancelled || in.State == store.IntentFailed {
			continue // carries the link itself, or never reached anyone
		}
		target := in.Target
		switch {
		case in.Channel == integrations.ChannelSlack && in.Event == integrations.EventOpened && inc.SlackTarget != "":
			target = inc.SlackTarget
		case integrations.IsPager(in.Channel) && in.Event == integrations.EventPage:
		default:
			continue
		}
		err := tx.Enqueue(&store.Intent{
			IncidentID: inc.ID, Channel: in.Channel, Target: target, Event: integrations.EventNote,
			Text: "Zoom bridge: " + inc.ZoomURL, By: "responder", CreatedAt: at, NextAt: at,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lostLease drops what the dispatcher holds after finding that the
// delivery lease passed to another replica; it asks for the lease again
// at once (it will wait until it is free).
func (d *Dispatcher) lostLease() {
	d.token, d.leaseAt = 0, time.Time{}
	d.resign()
}
