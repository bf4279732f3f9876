package handlers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// DispatchConfig tunes the delivery of outbox intents. Zero fields take the
// defaults.
type DispatchConfig struct {
	MaxAge      time.Duration // an intent older than this is marked failed (default 24h)
	BackoffBase time.Duration // first retry delay before jitter (default 1s)
	BackoffMax  time.Duration // retry delays never exceed this (default 60s); Retry-After is honoured as given
	Concurrency int           // deliveries in flight per vendor (default 4)
	Timeout     time.Duration // one delivery attempt (default 30s)
	SlackRate   float64       // messages per second per Slack channel (default 1)
	SlackBurst  int           // token bucket size per Slack channel (default 1)
	CollapseMax int           // most alert_joined intents merged into one Slack message (default 100)
	// DependencyWait bounds how long an intent waits for the one it depends
	// on (the announcement for its Zoom bridge) before going without it
	// (default 15s): a Zoom outage must not hold back the announcement.
	DependencyWait time.Duration
}

func (c *DispatchConfig) defaults() {
	setIfZero(&c.MaxAge, 24*time.Hour)
	setIfZero(&c.BackoffBase, time.Second)
	setIfZero(&c.BackoffMax, 60*time.Second)
	setIfZero(&c.Concurrency, 4)
	setIfZero(&c.Timeout, 30*time.Second)
	setIfZero(&c.SlackRate, 1)
	setIfZero(&c.SlackBurst, 1)
	setIfZero(&c.CollapseMax, 100)
	setIfZero(&c.DependencyWait, 15*time.Second)
}

func setIfZero[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Dispatcher delivers the outbox in the background. One goroutine owns its
// state; deliveries run in goroutines of their own, at most Concurrency per
// vendor, and report back. Intents of one lane (incident, channel, target)
// are delivered in order, one at a time, so a Slack thread's root goes before
// its replies. Webhook ingest never waits on it: a write only kicks it.
type Dispatcher struct {
	cfg         DispatchConfig
	store       Store
	notifiers   map[string]integrations.Notifier
	log         zerolog.Logger
	now         func() time.Time
	incidentURL func(id string) string

	kick    chan struct{}
	results chan delivery
	running atomic.Bool
	depth   atomic.Int64
	oldest  atomic.Int64 // creation time (unix nanoseconds) of the oldest pending intent; 0 for none
	sent    *prometheus.CounterVec

	// Owned by the Run goroutine.
	pending  map[uint64]*store.Intent
	lastSeq  uint64
	busy     map[string]bool // lanes with a delivery in flight
	inFlight map[string]int  // deliveries in flight per channel
	limiters map[string]*rate.Limiter
	hold     map[string]time.Time // channel+target -> no delivery before (a vendor's Retry-After)
	unsaved  []delivery           // finished deliveries whose state is not yet written
}

// delivery is one attempt at a group of intents (several only when
// alert_joined messages are collapsed into one).
type delivery struct {
	lane    string
	group   []*store.Intent
	receipt integrations.Receipt
	err     error
	at      time.Time
}

// NewDispatcher builds a dispatcher for the given notifiers, keyed by
// channel name (log, slack, email, zoom, opsgenie).
func NewDispatcher(cfg DispatchConfig, st Store, notifiers []integrations.Notifier, log zerolog.Logger,
	now func() time.Time, externalURL string, reg prometheus.Registerer) *Dispatcher {
	cfg.defaults()
	if now == nil {
		now = time.Now
	}
	d := &Dispatcher{
		cfg:         cfg,
		store:       st,
		notifiers:   map[string]integrations.Notifier{},
		log:         log.With().Str("component", "dispatcher").Logger(),
		now:         func() time.Time { return now().UTC() },
		incidentURL: func(id string) string { return incidentURL(externalURL, id) },
		kick:        make(chan struct{}, 1),
		results:     make(chan delivery),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_notifications_total",
			Help: "Notification deliveries finished, by channel and state (sent or failed).",
		}, []string{"channel", "state"}),
		pending:  map[uint64]*store.Intent{},
		busy:     map[string]bool{},
		inFlight: map[string]int{},
		limiters: map[string]*rate.Limiter{},
		hold:     map[string]time.Time{},
	}
	for _, n := range notifiers {
		d.notifiers[n.Name()] = n
	}
	if reg != nil {
		reg.MustRegister(d.sent, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "responder_outbox_pending",
			Help: "Notification intents waiting for delivery.",
		}, func() float64 { return float64(d.depth.Load()) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "responder_outbox_oldest_pending_seconds",
			Help: "Age of the oldest notification intent waiting for delivery; 0 when none waits.",
		}, func() float64 {
			if t := d.oldest.Load(); t != 0 {
				return d.now().Sub(time.Unix(0, t)).Seconds()
			}
			return 0
		}))
	}
	return d
}

// Kick tells the dispatcher that new intents were committed. It never blocks.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Running reports whether Run is running (for readiness).
func (d *Dispatcher) Running() bool { return d.running.Load() }

// Run delivers until ctx ends, then waits for the deliveries in flight and
// records their outcome, so that a clean stop neither loses nor repeats one.
func (d *Dispatcher) Run(ctx context.Context) {
	d.running.Store(true)
	defer d.running.Store(false)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := d.load(); err != nil {
			d.log.Error().Err(err).Msg("read outbox")
		}
		wake := d.startDue(ctx)
		if len(d.unsaved) > 0 {
			_ = d.save() // logged; kept for the next round
			if len(d.unsaved) > 0 {
				wake = minTime(wake, d.now().Add(100*time.Millisecond))
			}
		}
		wait := time.Hour
		if !wake.IsZero() {
			wait = max(wake.Sub(d.now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			d.drain()
			return
		case <-d.kick:
		case r := <-d.results:
			d.finish(r)
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// drain waits for the deliveries in flight and writes their outcome.
func (d *Dispatcher) drain() {
	for n := d.inFlightTotal(); n > 0; n-- {
		d.finish(<-d.results)
	}
	for try := 0; len(d.unsaved) > 0 && try < 50; try++ {
		if err := d.save(); errors.Is(err, store.ErrClosed) {
			break
		}
		if len(d.unsaved) > 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, r := range d.unsaved {
		d.log.Error().Str("incident", r.group[0].IncidentID).Str("channel", r.group[0].Channel).
			Msg("stopping with a delivery outcome not written: it will be attempted again")
	}
}

func (d *Dispatcher) inFlightTotal() int {
	n := 0
	for _, c := range d.inFlight {
		n += c
	}
	return n
}

// load reads pending intents committed since the last load, through the
// pending index.
func (d *Dispatcher) load() error {
	for {
		var batch []store.Intent
		err := d.store.View(context.Background(), func(tx store.Tx) error {
			var err error
			batch, err = tx.PendingIntents(d.lastSeq, 1000)
			return err
		})
		if err != nil {
			return err
		}
		for i := range batch {
			in := batch[i]
			d.lastSeq = max(d.lastSeq, in.Seq)
			if _, known := d.pending[in.Seq]; !known {
				d.pending[in.Seq] = &in
				// A Retry-After outlives a restart: hold its target again.
				if k := in.Channel + "\x00" + in.Target; in.HoldsTarget && in.NextAt.After(d.hold[k]) {
					d.hold[k] = in.NextAt
				}
			}
		}
		d.depth.Store(int64(len(d.pending)))
		if len(batch) < 1000 {
			return nil
		}
	}
}

func laneOf(in *store.Intent) string {
	return in.IncidentID + "\x00" + in.Channel + "\x00" + in.Target
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// startDue starts the head of every lane that is due and allowed to go,
// and returns when the next one becomes due (zero for never).
func (d *Dispatcher) startDue(ctx context.Context) time.Time {
	if ctx.Err() != nil {
		return time.Time{} // stopping: start nothing new
	}
	now := d.now()
	seqs := make([]uint64, 0, len(d.pending))
	for seq := range d.pending {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	seen := map[string]bool{}
	var wake time.Time
	var oldest int64
	for _, in := range d.pending {
		if t := in.CreatedAt.UnixNano(); in.State == store.IntentPending && (oldest == 0 || t < oldest) {
			oldest = t
		}
	}
	d.oldest.Store(oldest)
	for i, seq := range seqs {
		in := d.pending[seq]
		lane := laneOf(in)
		if seen[lane] {
			continue // only the head of a lane may go
		}
		seen[lane] = true
		if d.busy[lane] || in.State != store.IntentPending {
			// In flight, or finished and its outcome not yet written: the
			// lane waits, so nothing is sent twice or out of order.
			continue
		}
		if in.After != 0 && d.pending[in.After] != nil {
			// Wait for the intent it depends on (the Zoom bridge), but not
			// for long: the announcement matters more than its link.
			if until := in.CreatedAt.Add(d.cfg.DependencyWait); now.Before(until) {
				wake = minTime(wake, until)
				continue
			}
		}
		if now.Sub(in.CreatedAt) > d.cfg.MaxAge {
			d.expire(in, lane)
			wake = now // the lane's next intent may go at once
			continue
		}
		if in.NextAt.After(now) {
			wake = minTime(wake, in.NextAt)
			continue
		}
		if d.inFlight[in.Channel] >= d.cfg.Concurrency {
			continue // a delivery finishing wakes the loop
		}
		if until := d.hold[in.Channel+"\x00"+in.Target]; until.After(now) {
			wake = minTime(wake, until) // the vendor asked the whole target to wait
			continue
		}
		if in.Channel == channelSlack {
			lim := d.limiters[in.Target]
			if lim == nil {
				lim = rate.NewLimiter(rate.Limit(d.cfg.SlackRate), d.cfg.SlackBurst)
				d.limiters[in.Target] = lim
			}
			r := lim.ReserveN(now, 1)
			if delay := r.DelayFrom(now); delay > 0 {
				r.CancelAt(now)
				wake = minTime(wake, now.Add(delay))
				continue
			}
		}
		group := []*store.Intent{in}
		if in.Channel == channelSlack && in.Event == integrations.EventAlertJoined {
			group = d.collapse(in, lane, seqs[i+1:], now)
		}
		d.start(ctx, lane, group)
	}
	return wake
}

// collapse gathers the alert_joined intents that follow head in its lane,
// due and uninterrupted by other events, into one delivery.
func (d *Dispatcher) collapse(head *store.Intent, lane string, rest []uint64, now time.Time) []*store.Intent {
	group := []*store.Intent{head}
	for _, seq := range rest {
		if len(group) >= d.cfg.CollapseMax {
			break
		}
		in := d.pending[seq]
		if laneOf(in) != lane {
			continue
		}
		if in.Event != integrations.EventAlertJoined || in.NextAt.After(now) || in.State != store.IntentPending {
			break
		}
		group = append(group, in)
	}
	return group
}

func (d *Dispatcher) start(ctx context.Context, lane string, group []*store.Intent) {
	d.busy[lane] = true
	head := group[0]
	d.inFlight[head.Channel]++
	n := d.notifiers[head.Channel]
	// Deliveries outlive a stop request by at most one attempt's timeout,
	// so that their outcome can be written.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout)
	go func() {
		defer cancel()
		r := delivery{lane: lane, group: group}
		if n == nil {
			r.err = integrations.Permanent(fmt.Errorf("no %s integration is configured", head.Channel))
		} else if m, err := d.message(dctx, group); err != nil {
			r.err = err
		} else {
			r.receipt, r.err = n.Notify(dctx, m)
		}
		r.at = d.now()
		d.results <- r
	}()
}

// message renders a delivery from the incident as it is now.
func (d *Dispatcher) message(ctx context.Context, group []*store.Intent) (integrations.Message, error) {
	head := group[0]
	var inc *store.Incident
	err := d.store.View(ctx, func(tx store.Tx) error {
		var err error
		inc, err = tx.Incident(head.IncidentID)
		return err
	})
	if err != nil {
		return integrations.Message{}, integrations.Temporary(fmt.Errorf("read incident %s: %w", head.IncidentID, err), 0)
	}
	m := integrations.Message{
		Key: head.Key, Event: head.Event, Text: head.Text, Target: head.Target,
		At: head.CreatedAt, By: head.By, Mention: head.Mention, Incident: d.snapshot(inc),
	}
	if len(group) > 1 {
		for _, in := range group {
			m.Lines = append(m.Lines, in.Text)
		}
		m.Text = "" // the vendor words a collapsed list ("12 more alerts joined:")
	}
	if head.Channel == channelSlack && head.Event != integrations.EventOpened && head.Event != integrations.EventCustomer {
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
	}
}

// backoff is the delay before retry number attempt (1 for the first
// retry): exponential from BackoffBase, capped at BackoffMax, with jitter
// over its upper half so that retries of many intents spread out.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	delay := d.cfg.BackoffMax
	if attempt < 32 {
		delay = min(d.cfg.BackoffBase<<(attempt-1), d.cfg.BackoffMax)
	}
	half := delay / 2
	return half + rand.N(half+1) //nolint:gosec // jitter, not a secret
}

// finish applies a delivery's outcome to its intents and queues the write.
func (d *Dispatcher) finish(r delivery) {
	head := r.group[0]
	d.inFlight[head.Channel]--
	retry, after := integrations.Retryable(r.err)
	holds := retry && after > 0
	if holds {
		// A Retry-After speaks for the whole target (a Slack channel, the
		// vendor's API), not just this message.
		d.hold[head.Channel+"\x00"+head.Target] = r.at.Add(after)
	}
	for _, in := range r.group {
		in.Attempts++
		switch {
		case r.err == nil:
			t := r.at
			in.State, in.SentAt, in.LastError = store.IntentSent, &t, ""
			if in != head {
				in.MergedInto = head.Seq
			}
		case retry:
			in.LastError = r.err.Error()
			if after <= 0 {
				after = d.backoff(head.Attempts)
			}
			in.NextAt = r.at.Add(after)
			in.HoldsTarget = holds
		default:
			in.State, in.LastError = store.IntentFailed, r.err.Error()
		}
	}
	if r.err == nil {
		// The vendor answers again: the deliveries to the same target that
		// wait out a backoff go now, paced by the rate limit, instead of
		// each at the end of its own backoff (up to BackoffMax later).
		for _, in := range d.pending {
			if in.Channel == head.Channel && in.Target == head.Target && in.State == store.IntentPending &&
				in.Attempts > 0 && !in.HoldsTarget && in.NextAt.After(r.at) {
				in.NextAt = r.at
			}
		}
	}
	level := zerolog.InfoLevel
	switch {
	case r.err != nil && retry:
		level = zerolog.WarnLevel
	case r.err != nil:
		level = zerolog.ErrorLevel
	case head.Channel == channelLog:
		level = zerolog.DebugLevel // the log notifier's own line says it all
	}
	d.log.WithLevel(level).Err(r.err).Str("incident", head.IncidentID).Str("channel", head.Channel).Str("event", head.Event).
		Int("attempt", head.Attempts).Int("messages", len(r.group)).Str("state", head.State).
		Func(func(e *zerolog.Event) {
			if head.State == store.IntentPending {
				e.Time("next_attempt", head.NextAt)
			}
		}).Msg("delivery")
	if head.State != store.IntentPending {
		d.sent.WithLabelValues(head.Channel, head.State).Add(float64(len(r.group)))
	}
	d.unsaved = append(d.unsaved, r)
	_ = d.save() // logged; kept for the next round
}

// expire gives up on an intent that waited longer than MaxAge.
func (d *Dispatcher) expire(in *store.Intent, lane string) {
	d.busy[lane] = true // until the outcome is written
	in.State = store.IntentFailed
	in.LastError = fmt.Sprintf("not delivered within max_age %s (last error: %s)", d.cfg.MaxAge, in.LastError)
	d.log.Error().Str("incident", in.IncidentID).Str("channel", in.Channel).Str("event", in.Event).
		Int("attempts", in.Attempts).Msg("notification given up: older than max_age")
	d.sent.WithLabelValues(in.Channel, store.IntentFailed).Inc()
	d.unsaved = append(d.unsaved, delivery{lane: lane, group: []*store.Intent{in}, at: d.now()})
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
		for _, r := range batch {
			if err := d.apply(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.log.Warn().Err(err).Int("outcomes", len(batch)).Msg("write delivery outcomes: will retry")
		return err
	}
	d.unsaved = d.unsaved[len(batch):]
	for _, r := range batch {
		delete(d.busy, r.lane) // its outcome is on disk: the lane may go on
		for _, in := range r.group {
			if in.State != store.IntentPending {
				delete(d.pending, in.Seq)
			}
		}
	}
	d.depth.Store(int64(len(d.pending)))
	return nil
}

// apply writes one delivery's intents and what it changes on the incident:
// the Slack root's thread, the Zoom link, and a timeline line when a
// delivery finishes (log deliveries excepted).
func (d *Dispatcher) apply(tx store.Tx, r delivery) error {
	for _, in := range r.group {
		if err := tx.PutIntent(in); err != nil {
			return err
		}
	}
	head := r.group[0]
	if head.State == store.IntentPending || head.Channel == channelLog {
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
		case head.Channel == channelSlack && head.Event == integrations.EventOpened && r.receipt.Thread != "":
			inc.SlackChannel, inc.SlackTS = r.receipt.Channel, r.receipt.Thread
		case head.Channel == channelZoom && r.receipt.JoinURL != "":
			inc.ZoomURL = r.receipt.JoinURL
			text = "Zoom bridge: " + r.receipt.JoinURL
			if err := d.lateBridge(tx, inc, head, r.at); err != nil {
				return err
			}
		}
	}
	if err := tx.AppendTimeline(inc.ID, store.Entry{At: r.at, Kind: store.KindNotification, Text: text, By: "responder"}); err != nil {
		return err
	}
	return tx.PutIncident(inc)
}

// lateBridge posts the Zoom link in the incident's thread when the
// announcement that waited for it has gone (or is going) without it.
func (d *Dispatcher) lateBridge(tx store.Tx, inc *store.Incident, bridge *store.Intent, at time.Time) error {
	if inc.SlackTarget == "" {
		return nil
	}
	for _, in := range d.pending {
		if in.After == bridge.Seq && in.Channel == channelSlack && in.State == store.IntentPending && !d.busy[laneOf(in)] {
			return nil // the announcement is still waiting: it will carry the link
		}
	}
	announced := false
	intents, err := tx.IncidentIntents(inc.ID)
	if err != nil {
		return err
	}
	for _, in := range intents {
		announced = announced || (in.After == bridge.Seq && in.Channel == channelSlack)
	}
	if !announced {
		return nil
	}
	return tx.Enqueue(&store.Intent{
		IncidentID: inc.ID, Channel: channelSlack, Target: inc.SlackTarget, Event: integrations.EventNote,
		Text: "Zoom bridge: " + inc.ZoomURL, By: "responder", CreatedAt: at, NextAt: at,
	})
}
