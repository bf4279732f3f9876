package handlers

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

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
//
// Each lane keeps its intents in sequence order and only its head is ever
// looked at. Lanes wait in a schedule ordered by the time their head may go
// next (its retry time, the vendor's Retry-After, the Slack channel's rate,
// the end of its wait for a bridge), so a pass costs the lanes that are due,
// not every pending intent: a storm of 50,000 queued replies held back by
// Slack's rate costs nothing until the channel may take the next one.
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
	found   *prometheus.CounterVec

	// Owned by the Run goroutine.
	pending  map[uint64]*store.Intent
	lastSeq  uint64
	lanes    map[string]*lane
	sched    schedule                   // lanes to look at, by due time
	waiting  map[string][]*lane         // by channel: due lanes waiting for a free delivery slot
	waiters  map[uint64][]*store.Intent // intents that wait for the intent of this sequence (After)
	inFlight map[string]int             // deliveries in flight per channel
	limiters map[string]*rate.Limiter   // by Slack channel
	// slackSending: a message to this Slack channel is in flight.
	slackSending map[string]bool
	hold         map[string]time.Time // channel+target -> no delivery before (a vendor's Retry-After)
	failing      map[string]bool      // channel+target -> its last delivery failed and may be retried
	unsaved      []delivery           // finished deliveries whose state is not yet written
	oldestAt     time.Time            // when the oldest-pending gauge was last computed
	skip         []uint64             // undecodable intents still in the pending index
}

// lane is the pending intents of one incident, channel and target, in
// sequence order: they are delivered one at a time, in that order.
type lane struct {
	key   string
	queue []*store.Intent
	// busy: a delivery of the head is in flight, or its outcome is not yet
	// written; the lane is looked at again once the outcome is on disk.
	busy bool
	// blocked: due, but its channel had no free delivery slot; it is in
	// Dispatcher.waiting and not in the schedule.
	blocked bool
	due     time.Time // when to look at it next; the zero time is "at once"
	index   int       // its place in the schedule heap; -1 when not in it
}

func (l *lane) headSeq() uint64 {
	if len(l.queue) == 0 {
		return 0
	}
	return l.queue[0].Seq
}

// schedule is a min-heap of lanes by due time (container/heap).
type schedule []*lane

func (s schedule) Len() int { return len(s) }

// Less orders by due time, then by the head's sequence, so that of lanes
// due together (a Retry-After hold ending) the oldest message goes first.
func (s schedule) Less(i, j int) bool {
	if !s[i].due.Equal(s[j].due) {
		return s[i].due.Before(s[j].due)
	}
	return s[i].headSeq() < s[j].headSeq()
}
func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}

func (s *schedule) Push(x any) {
	l := x.(*lane)
	l.index = len(*s)
	*s = append(*s, l)
}

func (s *schedule) Pop() any {
	old := *s
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.index = -1
	*s = old[:len(old)-1]
	return l
}

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
}

// finder is a notifier that can tell whether a message reached the vendor
// when an attempt's outcome is in doubt (integrations/slack looks for the
// key it put in the message's metadata). Such a notifier's attempts are
// recorded on disk before they are made, so that a crash leaves them in
// doubt rather than forgotten.
type finder interface {
	Find(ctx context.Context, m integrations.Message) (integrations.Receipt, bool, error)
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
		found: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_notifications_found_total",
			Help: "Deliveries in doubt (after a crash or an attempt without an answer) found already at the vendor, and so not sent again.",
		}, []string{"channel"}),
		pending:      map[uint64]*store.Intent{},
		lanes:        map[string]*lane{},
		waiting:      map[string][]*lane{},
		waiters:      map[uint64][]*store.Intent{},
		inFlight:     map[string]int{},
		limiters:     map[string]*rate.Limiter{},
		hold:         map[string]time.Time{},
		failing:      map[string]bool{},
		slackSending: map[string]bool{},
	}
	for _, n := range notifiers {
		d.notifiers[n.Name()] = n
	}
	if reg != nil {
		reg.MustRegister(d.sent, d.found, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
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
// pending index. An intent that cannot be decoded is logged and taken out
// of the pending index, so that it neither stops the others nor comes back.
func (d *Dispatcher) load() error {
	const page = 1000
	for {
		var batch []store.Intent
		var bad *store.UndecodableError
		err := d.store.View(context.Background(), func(tx store.Tx) error {
			var err error
			batch, err = tx.PendingIntents(d.lastSeq, page)
			if errors.As(err, &bad) {
				return nil // the others are read all the same
			}
			return err
		})
		if err != nil {
			return err
		}
		nbad := 0
		if bad != nil {
			nbad = len(bad.Seqs)
			for i, seq := range bad.Seqs {
				d.lastSeq = max(d.lastSeq, seq)
				// The decoding error names a field and a type, never the
				// stored text: nothing of the message reaches the log.
				d.log.Error().Uint64("seq", seq).Err(bad.Errs[i]).
					Msg("outbox intent cannot be decoded: it is skipped and will not be delivered")
				d.sent.WithLabelValues("unknown", store.IntentFailed).Inc()
				d.skip = append(d.skip, seq)
			}
		}
		for i := range batch {
			in := batch[i]
			d.lastSeq = max(d.lastSeq, in.Seq)
			if _, known := d.pending[in.Seq]; !known {
				d.add(&in)
				// A Retry-After outlives a restart: hold its target again.
				if k := targetOf(&in); in.HoldsTarget && in.NextAt.After(d.hold[k]) {
					d.hold[k] = in.NextAt
				}
			}
		}
		d.depth.Store(int64(len(d.pending)))
		if len(batch)+nbad < page {
			break
		}
	}
	return d.skipUndecodable()
}

// skipUndecodable takes the intents that cannot be decoded out of the
// pending index; on failure they are kept and tried on the next load.
func (d *Dispatcher) skipUndecodable() error {
	if len(d.skip) == 0 {
		return nil
	}
	err := d.store.Update(context.Background(), func(tx store.Tx) error {
		for _, seq := range d.skip {
			if err := tx.SkipIntent(seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("skip undecodable intents: %w", err)
	}
	d.skip = nil
	return nil
}

func laneOf(in *store.Intent) string {
	return in.IncidentID + "\x00" + in.Channel + "\x00" + in.Target
}

// targetOf is what a vendor's Retry-After speaks for: a Slack channel, an
// email list, the vendor's API.
func targetOf(in *store.Intent) string {
	return in.Channel + "\x00" + in.Target
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// add takes a pending intent into its lane. Intents arrive in sequence
// order (the outbox is read in that order), so appending keeps a lane
// ordered. A lane that was empty is looked at at once.
func (d *Dispatcher) add(in *store.Intent) {
	d.pending[in.Seq] = in
	key := laneOf(in)
	l := d.lanes[key]
	if l == nil {
		l = &lane{key: key, index: -1}
		d.lanes[key] = l
	}
	l.queue = append(l.queue, in)
	if in.After != 0 {
		d.waiters[in.After] = append(d.waiters[in.After], in)
	}
	if len(l.queue) == 1 && !l.busy {
		d.schedule(l, time.Time{})
	}
}

// remove drops a finished intent (its outcome written) and wakes the lanes
// whose head waited for it.
func (d *Dispatcher) remove(in *store.Intent) {
	delete(d.pending, in.Seq)
	if in.After != 0 {
		ws := slices.DeleteFunc(d.waiters[in.After], func(w *store.Intent) bool { return w == in })
		if len(ws) == 0 {
			delete(d.waiters, in.After)
		} else {
			d.waiters[in.After] = ws
		}
	}
	for _, w := range d.waiters[in.Seq] {
		if l := d.lanes[laneOf(w)]; l != nil && !l.busy {
			d.schedule(l, time.Time{})
		}
	}
}

// schedule makes the lane due at t, or keeps it due earlier when it
// already is: looking at a lane too early only schedules it again.
func (d *Dispatcher) schedule(l *lane, t time.Time) {
	if l.blocked {
		return // looked at as soon as its channel has a free slot
	}
	if l.index >= 0 {
		if t.Before(l.due) {
			l.due = t
			heap.Fix(&d.sched, l.index)
		}
		return
	}
	l.due = t
	heap.Push(&d.sched, l)
}

// startDue starts the head of every lane that is due and allowed to go,
// and returns when the next one becomes due (zero for never). It looks
// only at the lanes that are due: those waiting for a delivery slot of
// their channel (while slots are free), then the schedule's due ones.
func (d *Dispatcher) startDue(ctx context.Context) time.Time {
	if ctx.Err() != nil {
		return time.Time{} // stopping: start nothing new
	}
	now := d.now()
	d.updateOldest(now)
	for _, ch := range sortedKeys(d.waiting) {
		ls := d.waiting[ch]
		for len(ls) > 0 && d.inFlight[ch] < d.cfg.Concurrency {
			l := ls[0]
			ls[0] = nil
			ls = ls[1:]
			l.blocked = false
			d.visit(ctx, l, now)
		}
		if len(ls) == 0 {
			delete(d.waiting, ch)
		} else {
			d.waiting[ch] = ls
		}
	}
	for len(d.sched) > 0 && !d.sched[0].due.After(now) {
		d.visit(ctx, heap.Pop(&d.sched).(*lane), now)
	}
	if len(d.sched) > 0 {
		return d.sched[0].due
	}
	return time.Time{}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// visit looks at a due lane's head: it starts it, or schedules the lane
// for when it may go, or leaves it to be woken (busy, waiting for a slot).
func (d *Dispatcher) visit(ctx context.Context, l *lane, now time.Time) {
	if l.busy {
		// In flight, or finished and its outcome not yet written: the lane
		// waits, so nothing is sent twice or out of order. Writing the
		// outcome schedules it again.
		return
	}
	if len(l.queue) == 0 {
		delete(d.lanes, l.key)
		return
	}
	in := l.queue[0]
	if in.After != 0 && d.pending[in.After] != nil {
		// Wait for the intent it depends on (the Zoom bridge), but not
		// for long: the announcement matters more than its link. Its
		// outcome being written wakes the lane earlier.
		if until := in.CreatedAt.Add(d.cfg.DependencyWait); now.Before(until) {
			d.schedule(l, until)
			return
		}
	}
	if now.Sub(in.CreatedAt) > d.cfg.MaxAge {
		d.expire(in, l)
		return
	}
	if in.NextAt.After(now) {
		d.schedule(l, in.NextAt)
		return
	}
	if d.inFlight[in.Channel] >= d.cfg.Concurrency {
		l.blocked = true // a delivery finishing frees a slot
		d.waiting[in.Channel] = append(d.waiting[in.Channel], l)
		return
	}
	if until := d.hold[targetOf(in)]; until.After(now) {
		d.schedule(l, until) // the vendor asked the whole target to wait
		return
	}
	if in.Channel == channelSlack {
		// One message at a time per channel, and the rate counted from the
		// previous answer (see finish): Slack measures the gap between
		// arrivals, which a count from the start of each send would let
		// jitter below 1/rate.
		if d.slackSending[in.Target] {
			d.schedule(l, now.Add(d.slackGap()))
			return
		}
		if tokens := d.limiter(in.Target).TokensAt(now); tokens < 1 {
			d.schedule(l, now.Add(time.Duration((1-tokens)*float64(d.slackGap()))))
			return
		}
	}
	group := []*store.Intent{in}
	switch {
	case in.AttemptAt != nil:
		group = doubtGroup(l) // the message that may exist, as it was
	case in.Channel == channelSlack && in.Event == integrations.EventAlertJoined:
		group = d.collapse(l, now)
	}
	d.start(ctx, l, group)
}

// limiter is the token bucket of a Slack channel.
func (d *Dispatcher) limiter(channel string) *rate.Limiter {
	lim := d.limiters[channel]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(d.cfg.SlackRate), d.cfg.SlackBurst)
		d.limiters[channel] = lim
	}
	return lim
}

// slackGap is the time one message takes from a Slack channel's bucket.
func (d *Dispatcher) slackGap() time.Duration {
	return time.Duration(float64(time.Second) / d.cfg.SlackRate)
}

// doubtGroup is the head in doubt and the intents that went into the same
// message with it (collapsed alert_joined replies).
func doubtGroup(l *lane) []*store.Intent {
	head := l.queue[0]
	group := []*store.Intent{head}
	for _, in := range l.queue[1:] {
		if in.AttemptAt == nil || in.AttemptKey != head.AttemptKey || in.State != store.IntentPending {
			break
		}
		group = append(group, in)
	}
	return group
}

// updateOldest sets the oldest-pending gauge from the lanes' first pending
// intents, at most once a second (the gauge need not be fresher, and a pass
// must not cost every lane).
func (d *Dispatcher) updateOldest(now time.Time) {
	if len(d.pending) == 0 {
		d.oldest.Store(0)
		return
	}
	if now.Sub(d.oldestAt) < time.Second && now.After(d.oldestAt) {
		return
	}
	d.oldestAt = now
	var oldest int64
	for _, l := range d.lanes {
		for _, in := range l.queue {
			if in.State != store.IntentPending {
				continue
			}
			if t := in.CreatedAt.UnixNano(); oldest == 0 || t < oldest {
				oldest = t
			}
			break
		}
	}
	d.oldest.Store(oldest)
}

// collapse gathers the alert_joined intents that follow the head in its
// lane, due and uninterrupted by other events, into one delivery.
func (d *Dispatcher) collapse(l *lane, now time.Time) []*store.Intent {
	group := []*store.Intent{l.queue[0]}
	for _, in := range l.queue[1:] {
		if len(group) >= d.cfg.CollapseMax {
			break
		}
		if in.Event != integrations.EventAlertJoined || in.NextAt.After(now) || in.State != store.IntentPending {
			break
		}
		group = append(group, in)
	}
	return group
}

func (d *Dispatcher) start(ctx context.Context, l *lane, group []*store.Intent) {
	l.busy = true
	head := group[0]
	d.inFlight[head.Channel]++
	if head.Channel == channelSlack {
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
	go func() {
		defer cancel()
		r := delivery{lane: l, group: group, doubt: inDoubt}
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
	if len(marks) > 0 {
		err := d.store.Update(ctx, func(tx store.Tx) error {
			for i := range marks {
				if err := tx.PutIntent(&marks[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			// Not attempted: nothing was sent, nothing is in doubt.
			r.err = integrations.Temporary(fmt.Errorf("record the attempt before sending: %w", err), 0)
			return
		}
	}
	if r.doubt && f != nil {
		receipt, found, err := f.Find(ctx, m)
		switch retry, _ := integrations.Retryable(err); {
		case err != nil && retry:
			r.err = fmt.Errorf("check whether an earlier attempt was delivered: %w", err)
			return // still in doubt: asked again next time, never sent blind
		case err != nil:
			d.log.Warn().Err(err).Str("incident", head.IncidentID).Str("channel", head.Channel).Str("event", head.Event).
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
	if head.Channel == channelSlack {
		// The channel's token is taken when the answer comes, so that the
		// next message leaves at least 1/rate after this one arrived.
		delete(d.slackSending, head.Target)
		d.limiter(head.Target).ReserveN(r.at, 1)
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
			in.LastError = errorText(r.err)
			if after <= 0 {
				after = d.backoff(head.Attempts)
			}
			in.NextAt = r.at.Add(after)
			in.HoldsTarget = holds
		default:
			in.State, in.LastError = store.IntentFailed, errorText(r.err)
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

// recovered is told that a target which failed answers again: the heads
// of its lanes that wait out a backoff go now, paced by the rate limit and
// any Retry-After hold, instead of each at the end of its own backoff (up
// to BackoffMax later). It runs once per recovery, not on every success.
func (d *Dispatcher) recovered(sent *store.Intent, at time.Time) {
	for _, l := range d.lanes {
		if len(l.queue) == 0 || l.busy {
			continue
		}
		in := l.queue[0]
		if targetOf(in) == targetOf(sent) && in.State == store.IntentPending && in.Attempts > 0 &&
			!in.HoldsTarget && in.NextAt.After(at) {
			in.NextAt = at
			d.schedule(l, at)
		}
	}
}

// maxErrorText bounds a delivery error as kept on the intent and shown in
// the timeline: enough to say what went wrong, not a vendor's whole page.
const maxErrorText = 500

// errorText is a delivery error for the record, cut at maxErrorText bytes
// on a character boundary.
func errorText(err error) string {
	s := err.Error()
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " [cut]"
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
	for _, in := range d.waiters[bridge.Seq] {
		if l := d.lanes[laneOf(in)]; in.Channel == channelSlack && in.State == store.IntentPending && l != nil && !l.busy {
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
