// Package outbox delivers the notification intents that incident changes
// write to the store's outbox, in the background: lanes per incident,
// channel and target delivered in order, Slack paced per channel from the
// previous answer, vendors' Retry-After honoured for the whole target,
// backoff with jitter, attempts whose outcome is unknown (in doubt) checked
// with the vendor before they are repeated, and every outcome written back
// to the store before the lane goes on.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// Store is what the dispatcher needs of the store.
type Store interface {
	Update(ctx context.Context, fn func(store.Tx) error) error
	View(ctx context.Context, fn func(store.Tx) error) error
}

// Config tunes the delivery of outbox intents. Zero fields take the
// defaults.
type Config struct {
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
	// RescanEvery is how often the whole pending index is compared with
	// the intents held (default 1s), for backends where intents can become
	// visible out of sequence order (see rescan).
	RescanEvery time.Duration
	// Redactor removes secrets from delivery errors before they are kept
	// or logged; nil redacts credential shapes only.
	Redactor *integrations.Redactor
	// Holder names this replica in the delivery lease of a store shared by
	// several (store.Leases); empty: the host name and process id.
	Holder string
	// LeaseTTL is how long the delivery lease lasts without being renewed
	// (default 30s; it is renewed every third of it): how long the outbox
	// waits after its replica died before another takes over.
	LeaseTTL time.Duration
}

func (c *Config) defaults() {
	setIfZero(&c.MaxAge, 24*time.Hour)
	setIfZero(&c.BackoffBase, time.Second)
	setIfZero(&c.BackoffMax, 60*time.Second)
	setIfZero(&c.Concurrency, 4)
	setIfZero(&c.Timeout, 30*time.Second)
	setIfZero(&c.SlackRate, 1)
	setIfZero(&c.SlackBurst, 1)
	setIfZero(&c.CollapseMax, 100)
	setIfZero(&c.DependencyWait, 15*time.Second)
	setIfZero(&c.RescanEvery, time.Second)
	setIfZero(&c.LeaseTTL, 30*time.Second)
	if c.Holder == "" {
		host, _ := os.Hostname()
		c.Holder = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if c.Redactor == nil {
		c.Redactor = integrations.NewRedactor(nil)
	}
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
	cfg   Config
	store Store
	// leases is the store's, when replicas share it: only the holder of
	// the delivery lease delivers, and it checks its fencing number where
	// it records each attempt and outcome.
	leases      store.Leases
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
	rescanAt time.Time // when load next compares the whole pending index
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
	token        uint64               // the delivery lease's fencing number while held; 0 otherwise
	leaseAt      time.Time            // when the lease is next taken or renewed
}

// deliveryLease is the lease's name in the store.
const deliveryLease = "outbox"

// New builds a dispatcher for the given notifiers, keyed by
// channel name (log, slack, email, zoom, opsgenie).
func New(cfg Config, st Store, notifiers []integrations.Notifier, log zerolog.Logger,
	now func() time.Time, incidentURL func(id string) string, reg prometheus.Registerer) *Dispatcher {
	cfg.defaults()
	if now == nil {
		now = time.Now
	}
	if incidentURL == nil {
		incidentURL = func(id string) string { return id }
	}
	d := &Dispatcher{
		cfg:         cfg,
		store:       st,
		notifiers:   map[string]integrations.Notifier{},
		log:         log.With().Str("component", "dispatcher").Logger(),
		now:         func() time.Time { return now().UTC() },
		incidentURL: incidentURL,
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
		// Each vendor's series exist at zero from the start: one that first
		// appears at 1 shows no increase to rate(), and an alert on failed
		// deliveries would miss the first.
		for _, state := range []string{store.IntentSent, store.IntentFailed} {
			d.sent.WithLabelValues(n.Name(), state)
		}
	}
	if l, ok := st.(store.Leases); ok {
		d.leases = l
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
		var wake time.Time
		if d.leading(ctx) {
			if err := d.load(); err != nil {
				d.log.Error().Err(err).Msg("read outbox")
			}
			wake = d.startDue(ctx)
		}
		if d.leases != nil {
			wake = minTime(wake, d.leaseAt)
		}
		if len(d.unsaved) > 0 {
			_ = d.save() // logged; kept for the next round
			if len(d.unsaved) > 0 {
				wake = minTime(wake, d.now().Add(100*time.Millisecond))
			}
		}
		if d.token != 0 || d.leases == nil {
			wake = minTime(wake, d.rescanAt)
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

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// leading reports whether this replica delivers: always on a store of one
// process; on a shared one, while it holds the delivery lease, which it
// takes or renews every third of LeaseTTL. Losing the lease drops what it
// held (another replica delivers it now); deliveries in flight finish, and
// their outcome is written only if the lease is still held (fenced).
func (d *Dispatcher) leading(ctx context.Context) bool {
	if d.leases == nil {
		return true
	}
	now := d.now()
	if now.Before(d.leaseAt) {
		return d.token != 0
	}
	token, err := d.leases.HoldLease(ctx, deliveryLease, d.cfg.Holder, d.cfg.LeaseTTL)
	d.leaseAt = now.Add(d.cfg.LeaseTTL / 3)
	switch {
	case err != nil:
		// Unknown: deliver nothing until the lease is known again; it may
		// expire meanwhile and pass to another replica.
		d.log.Warn().Err(err).Msg("cannot renew the delivery lease: delivering nothing until it is held again")
		token = 0
	case token != 0 && d.token == 0:
		d.log.Info().Uint64("token", token).Msg("holding the delivery lease: this replica delivers the outbox")
	case token == 0 && d.token != 0:
		d.log.Warn().Msg("the delivery lease passed to another replica: this one stops delivering")
	}
	if token != d.token {
		d.resign()
	}
	d.token = token
	return token != 0
}

// resign drops what the dispatcher holds, to be read again from the store
// when it leads (again): another replica may have delivered it meanwhile.
func (d *Dispatcher) resign() {
	d.pending = map[uint64]*store.Intent{}
	d.lanes = map[string]*lane{}
	d.sched = nil
	d.waiting = map[string][]*lane{}
	d.waiters = map[uint64][]*store.Intent{}
	d.hold = map[string]time.Time{}
	d.failing = map[string]bool{}
	d.unsaved = nil
	d.skip = nil
	d.lastSeq = 0
	d.rescanAt = time.Time{}
	d.depth.Store(0)
}

// fence checks, inside tx, that the delivery lease is still held with
// token; 0 (a store of one process) checks nothing.
func fence(tx store.Tx, token uint64) error {
	if token == 0 {
		return nil
	}
	lt, ok := tx.(store.LeaseTx)
	if !ok {
		return nil
	}
	return lt.CheckLease(deliveryLease, token)
}
