// Package incident is the incident service: the rules of Responder's
// incident process in plain Go, called alike by every front door (the JSON
// API, the web pages, the timers, and later Slack). It opens, joins,
// reopens and resolves incidents from Alertmanager groups and OpsGenie
// alerts; declares, drills, acknowledges, resolves, sets roles and posts
// updates for people; plans the notifications each change causes into the
// store's outbox, in the change's own transaction; posts reminders; and
// drafts post-mortems. It knows nothing of HTTP: its errors are kinds (see
// Error), which the transports turn into their own answers.
package incident

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// Store is what the service needs from persistence: a durable write
// transaction, a read one, and the backend's state for metrics.
type Store interface {
	Update(ctx context.Context, fn func(store.Tx) error) error
	View(ctx context.Context, fn func(store.Tx) error) error
	QueueDepth() int
	Ready() error
}

// Kicker is told that new outbox intents were committed (the dispatcher).
type Kicker interface {
	Kick()
}

// Config is what the service takes from the configuration.
type Config struct {
	// ExternalURL is where people reach this daemon (http.public_url);
	// links in messages and post-mortems open its pages.
	ExternalURL string
	Routes      Routes
	Scenarios   map[string]Scenario // drill scenarios by name
	Schedule    []ScheduledDrill    // drills started at set times
	// ActionRemindEvery is how often an overdue action item is reminded
	// to its owner; 0: never.
	ActionRemindEvery time.Duration
	// TimeZone is the local zone shown beside UTC in reminders and
	// post-mortems (display.time_zone); nil falls back to the zone of the
	// policy's business hours.
	TimeZone *time.Location
}

// zone is the local zone shown beside UTC: the display zone, else the
// business hours' zone; nil for none.
func (s *Service) zone() *time.Location {
	if s.cfg.TimeZone != nil {
		return s.cfg.TimeZone
	}
	if s.policy != nil {
		return s.policy.BusinessHours.Location
	}
	return nil
}

// Deps are the parts the service is built from.
type Deps struct {
	Store  Store
	Policy *policy.Policy
	// Outbox is kicked after every write that changed an incident (and so
	// may have queued intents); nil when nothing delivers them (they stay
	// queued in the store).
	Outbox   Kicker
	Log      zerolog.Logger
	Now      func() time.Time
	Registry prometheus.Registerer
}

// Service is the incident service. It is safe for concurrent use.
type Service struct {
	cfg     Config
	store   Store
	policy  *policy.Policy
	outbox  Kicker
	log     zerolog.Logger
	now     func() time.Time
	metrics *metrics
	// started is when the service started: a heartbeat's grace counts
	// from it, so that a start raises no false alarm.
	started time.Time
}

// New builds the service and registers its metrics in d.Registry (a new
// registry when nil).
func New(cfg Config, d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	now := d.Now
	started := now().UTC()
	s := &Service{
		cfg:     cfg,
		store:   d.Store,
		policy:  d.Policy,
		outbox:  d.Outbox,
		log:     d.Log,
		now:     func() time.Time { return now().UTC() },
		metrics: newMetrics(d.Registry, d.Store, d.Policy, started),
		started: started,
	}
	d.Registry.MustRegister(actionCounts{s})
	return s
}

// Ready reports whether the store accepts writes.
func (s *Service) Ready() error { return s.store.Ready() }

// txn is a write's transaction with the changes made in it, so that what
// they did can be counted once the transaction is committed.
type txn struct {
	store.Tx
	changes []*change
}

// onceKey is the context key of Once.
type onceKey struct{}

// Once marks the writes made with ctx as the action of one delivery that
// its sender may deliver again (a Slack interaction retried, an envelope
// re-sent): the first write records key in its own transaction, and a
// write that finds key recorded (within IdempotencyWindow) does nothing
// and returns ErrAlreadyDone. An action that writes more than once must
// use a key per write.
func Once(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, onceKey{}, key)
}

// ErrAlreadyDone: the delivery marked by Once was acted on before.
var ErrAlreadyDone = errors.New("already done: this delivery was acted on before")

// write runs fn in one durable transaction (the incident changes and the
// intents they cause), then counts what the committed run of fn did and
// kicks the dispatcher. It never waits on a vendor.
func (s *Service) write(ctx context.Context, fn func(tx *txn) error) error {
	var last *txn // the run of fn that committed (fn may run more than once)
	once, _ := ctx.Value(onceKey{}).(string)
	err := s.store.Update(ctx, func(tx store.Tx) error {
		last = &txn{Tx: tx}
		if once != "" {
			prev, err := tx.Request(once)
			switch {
			case err == nil && s.now().Sub(prev.At) <= IdempotencyWindow:
				return ErrAlreadyDone
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		if err := fn(last); err != nil {
			return err
		}
		if once != "" {
			return tx.PutRequest(once, store.Request{At: s.now(), Digest: "once"})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ch := range last.changes {
		s.metrics.observe(ch)
	}
	if s.outbox != nil && len(last.changes) > 0 {
		s.outbox.Kick()
	}
	return nil
}

// URL is the incident's web page under publicURL (http.public_url): what
// every link to an incident opens, in a browser.
func URL(publicURL, id string) string {
	return strings.TrimRight(publicURL, "/") + "/incidents/" + id
}

// APIURL is the incident in the JSON API under publicURL.
func APIURL(publicURL, id string) string {
	return strings.TrimRight(publicURL, "/") + "/api/v1/incidents/" + id
}

// ExternalURL is where people reach this daemon (http.public_url).
func (s *Service) ExternalURL() string { return s.cfg.ExternalURL }

// url is the incident's page under the configured public URL.
func (s *Service) url(id string) string { return URL(s.cfg.ExternalURL, id) }

// Touched is an incident that a webhook touched.
type Touched struct {
	ID       string
	Created  bool
	Severity string
}

// ingest applies one webhook of src (holding alerts alerts) with apply, in
// one durable transaction, and counts the alerts once it is.
func (s *Service) ingest(ctx context.Context, src store.Source, alerts int, apply func(tx *txn, now time.Time) (*change, error)) ([]Touched, error) {
	res := []Touched{}
	err := s.write(ctx, func(tx *txn) error {
		res = res[:0]
		ch, err := apply(tx, s.now())
		if err != nil || ch == nil {
			return err
		}
		res = append(res, Touched{ID: ch.inc.ID, Created: ch.created, Severity: ch.inc.Severity})
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.metrics.alertsIngested.WithLabelValues(string(src)).Add(float64(alerts))
	return res, nil
}
