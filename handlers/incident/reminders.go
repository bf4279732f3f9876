package incident

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// eventReminder is the event of every reminder Responder posts in an
// incident's thread: an update that is due, an ETA that is asked for.
const eventReminder = "reminder"

// Reminder kinds, as counted in responder_reminders_total.
const (
	reminderUpdate = "update"
	reminderETA    = "eta"
)

// remindBy is who the timeline says posted a reminder.
const remindBy = "responder"

// mentionChannel is the store.Intent.Mention that calls on the whole
// channel, for an incident without a comms lead.
const mentionChannel = "channel"

// DefaultReminderEvery is how often RunReminders looks for reminders that
// are due when it is given no period of its own.
const DefaultReminderEvery = 30 * time.Second

// Remind posts the reminders that are due at s.now(): an update reminder
// for every open (or acknowledged) incident whose severity expects updates
// and has had none within its interval, and a request for an ETA once per
// incident, policy.ETAWithin after it opened. Whether a reminder is due is
// derived from the incident as stored (LastUpdateAt, LastReminderAt,
// ETARequestedAt), and the reminder is recorded in the same transaction as
// its outbox intents, so a restart neither loses nor repeats one. After a
// long pause (the daemon down for several intervals) one reminder is posted,
// not one per interval missed. A failure on one incident does not hold up
// the others; the errors are returned together.
func (s *Service) Remind(ctx context.Context) error {
	now := s.now()
	var open []store.Incident
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		open, err = tx.OpenIncidents()
		return err
	})
	if err != nil {
		return fmt.Errorf("reminders: read open incidents: %w", err)
	}
	var errs []error
	for i := range open {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if !s.remindersDue(&open[i], now).any() {
			continue
		}
		posted, err := s.remind(ctx, open[i].ID, now)
		if err != nil {
			if errors.Is(err, store.ErrClosed) {
				errs = append(errs, err)
				break
			}
			errs = append(errs, fmt.Errorf("reminders for %s: %w", open[i].ID, err))
			continue
		}
		for _, kind := range posted {
			s.metrics.reminders.WithLabelValues(kind, strconv.FormatBool(open[i].Drill)).Inc()
		}
	}
	return errors.Join(errs...)
}

// RunReminders runs Remind, CheckHeartbeats, StartScheduledDrills and
// RemindOverdue every period until ctx ends, starting at once (after a restart, what
// fell due while the daemon was down is posted now). A period of zero or less is DefaultReminderEvery. Failures are
// logged; the next pass tries again.
func (s *Service) RunReminders(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultReminderEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Remind(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("reminders")
		}
		if err := s.CheckHeartbeats(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("heartbeats")
		}
		if err := s.StartScheduledDrills(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("scheduled drills")
		}
		if err := s.RemindOverdue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("overdue action items")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// due says which reminders an incident needs now.
type due struct {
	update   bool
	eta      bool
	interval time.Duration // the severity's update interval
}

func (d due) any() bool { return d.update || d.eta }

// remindersDue decides, from the stored incident alone, which reminders
// are due at now. Only severities that expect updates get reminders: an
// incident without an update interval (S4 by default) is not run through
// the update process, so it is not asked for an ETA either.
func (s *Service) remindersDue(inc *store.Incident, now time.Time) due {
	if inc.Status == store.StatusResolved {
		return due{}
	}
	sev, err := policy.ParseSeverity(inc.Severity)
	if err != nil {
		return due{}
	}
	d := due{interval: s.policy.ProcessFor(sev).UpdateInterval}
	if d.interval <= 0 {
		return due{}
	}
	// One reminder per interval without an update: the next one falls due
	// an interval after the later of the last update (or the opening) and
	// the last reminder. A reminder missed while the daemon was down is
	// posted once, and the interval starts again from it.
	next := lastUpdate(inc)
	if inc.LastReminderAt != nil && inc.LastReminderAt.After(next) {
		next = *inc.LastReminderAt
	}
	d.update = !now.Before(next.Add(d.interval))
	within := s.policy.ETAWithin
	d.eta = inc.ETA == nil && inc.ETARequestedAt == nil && within > 0 && !now.Before(inc.CreatedAt.Add(within))
	return d
}

// lastUpdate is when the incident was last updated: its last progress
// update, else its opening.
func lastUpdate(inc *store.Incident) time.Time {
	if inc.LastUpdateAt != nil {
		return *inc.LastUpdateAt
	}
	return inc.CreatedAt
}

// remind posts the reminders due for one incident in one write and returns
// their kinds once the write is durable. The decision is made again inside
// the transaction, on the incident as it is then: an update posted since
// the read, or a pass running at the same time, is seen.
func (s *Service) remind(ctx context.Context, id string, now time.Time) ([]string, error) {
	var posted []string
	err := s.write(ctx, func(tx *txn) error {
		posted = posted[:0] // the closure may run more than once
		inc, err := tx.Incident(id)
		if err != nil {
			return err
		}
		d := s.remindersDue(inc, now)
		if !d.any() {
			return nil
		}
		ch := s.changeOf(tx, inc, now)
		mention := inc.Roles.CommsLead
		if mention == "" {
			mention = mentionChannel
		}
		url := s.url(inc.ID) + "#update-form" // the page's update form
		if d.update {
			since := lastUpdate(inc)
			text := "no update since " + s.clockText(since, now)
			if inc.LastUpdateAt == nil {
				text += ", when the incident opened"
			}
			text += fmt.Sprintf("; %s updates are due every %s and the next is due now: post one at %s, even if nothing is new",
				inc.Severity, shortDuration(d.interval), url)
			steps, err := ch.checklist()
			if err != nil {
				return err
			}
			if next := nextStep(steps); next != nil {
				text += fmt.Sprintf("; next step of the checklist: %s (%s)", next.Text, next.ID)
			}
			if err := ch.remind(text, mention); err != nil {
				return err
			}
			t := now
			inc.LastReminderAt = &t
			posted = append(posted, reminderUpdate)
		}
		if d.eta {
			text := fmt.Sprintf("no ETA for recovery yet, %s after the incident opened at %s: give one with an update at %s",
				shortDuration(now.Sub(inc.CreatedAt).Truncate(time.Minute)), s.clockText(inc.CreatedAt, now), url)
			if err := ch.remind(text, mention); err != nil {
				return err
			}
			t := now
			inc.ETARequestedAt = &t
			posted = append(posted, reminderETA)
		}
		return ch.save()
	})
	if err != nil {
		return nil, err
	}
	return posted, nil
}

// remind records a reminder in the timeline, saying whom it called on, and
// queues it for the incident's thread with that mention.
func (ch *change) remind(text, mention string) error {
	who := mention
	if who == mentionChannel {
		who = "the channel"
	}
	if err := ch.record(store.KindReminder, "reminded "+who+": "+text, remindBy); err != nil {
		return err
	}
	ch.events = append(ch.events, event{name: eventReminder, text: text, by: remindBy, mention: mention})
	return nil
}

// clockText shows t as "02:00 UTC (03:00 CET)": UTC first, the local time
// of the display zone beside it. A date is added to either when
// t is not on the same day as now there.
func (s *Service) clockText(t, now time.Time) string {
	utc := t.UTC()
	out := utc.Format("15:04 UTC")
	if !sameDay(utc, now.UTC()) {
		out = utc.Format("2006-01-02 15:04 UTC")
	}
	loc := s.zone()
	if loc == nil || loc == time.UTC {
		return out
	}
	local, localNow := t.In(loc), now.In(loc)
	if local.Format("MST") == "UTC" && local.Format("-0700") == "+0000" {
		return out
	}
	layout := "15:04 MST"
	if !sameDay(local, localNow) {
		layout = "2006-01-02 15:04 MST"
	}
	return out + " (" + local.Format(layout) + ")"
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// shortDuration is "1h", "4h", "30m", "1h30m" rather than "1h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
