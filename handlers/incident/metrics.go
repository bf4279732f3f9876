package incident

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// metrics are what the service counts. They live in the registry passed
// in, never the global one.
type metrics struct {
	alertsIngested  *prometheus.CounterVec
	incidentsOpened *prometheus.CounterVec
	reminders       *prometheus.CounterVec
	toAcknowledge   *prometheus.HistogramVec
	toResolve       *prometheus.HistogramVec
	drillsStarted   *prometheus.CounterVec
	stepsMarked     *prometheus.CounterVec
}

// durationBuckets span a minute to a day, in seconds.
var durationBuckets = []float64{60, 300, 600, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600}

// started is when the service started, from which a heartbeat never
// pinged since counts (see heartbeatPings).
func newMetrics(reg prometheus.Registerer, st Store, pol *policy.Policy, started time.Time) *metrics {
	m := &metrics{
		alertsIngested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_alerts_ingested_total",
			Help: "Alerts accepted from webhooks, by source.",
		}, []string{"source"}),
		incidentsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_incidents_opened_total",
			Help: "Incidents opened, by severity and source.",
		}, []string{"severity", "source"}),
		reminders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_reminders_total",
			Help: "Reminders posted, by kind (update, eta, postmortem) and whether the incident is a drill.",
		}, []string{"kind", "drill"}),
		drillsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_drills_started_total",
			Help: "Drills started, by scenario and by whom: a person (api) or drills.schedule (schedule).",
		}, []string{"scenario", "started_by"}),
		stepsMarked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_checklist_steps_marked_total",
			Help: "Runbook checklist steps marked, by runbook, new state (done, skipped, open) and whether the incident is a drill.",
		}, []string{"runbook", "state", "drill"}),
	}
	m.toAcknowledge = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "responder_time_to_acknowledge_seconds",
		Help:    "From an incident opening to its acknowledgement; drills are labelled apart.",
		Buckets: durationBuckets,
	}, []string{"severity", "drill"})
	m.toResolve = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "responder_time_to_resolve_seconds",
		Help:    "From an incident opening to its resolution; drills are labelled apart.",
		Buckets: durationBuckets,
	}, []string{"severity", "drill"})
	reg.MustRegister(m.alertsIngested, m.incidentsOpened, m.reminders, m.toAcknowledge, m.toResolve, m.drillsStarted, m.stepsMarked,
		openIncidents{st: st},
		heartbeatPings{st: st, pol: pol, started: started},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "responder_write_queue_depth",
			Help: "Writes waiting for the store's writer.",
		}, func() float64 { return float64(st.QueueDepth()) }),
	)
	return m
}

// observe records what a committed change did: an incident opened, its
// time to acknowledge or to resolve.
func (m *metrics) observe(ch *change) {
	inc, drill := ch.inc, strconv.FormatBool(ch.inc.Drill)
	if ch.created {
		m.incidentsOpened.WithLabelValues(inc.Severity, string(inc.Source)).Inc()
	}
	if ch.acknowledged && inc.AcknowledgedAt != nil {
		m.toAcknowledge.WithLabelValues(inc.Severity, drill).Observe(inc.AcknowledgedAt.Sub(inc.CreatedAt).Seconds())
	}
	if ch.resolved && inc.ResolvedAt != nil {
		m.toResolve.WithLabelValues(inc.Severity, drill).Observe(inc.ResolvedAt.Sub(inc.CreatedAt).Seconds())
	}
	for _, st := range ch.marked {
		m.stepsMarked.WithLabelValues(st.Runbook, st.State, drill).Inc()
	}
}

// openIncidents reports the open incidents by severity, read through the
// store's open index at scrape time (never a scan of the whole file).
type openIncidents struct{ st Store }

var openIncidentsDesc = prometheus.NewDesc("responder_open_incidents",
	"Incidents not yet resolved, by severity and whether they are drills.", []string{"severity", "drill"}, nil)

func (o openIncidents) Describe(ch chan<- *prometheus.Desc) { ch <- openIncidentsDesc }

func (o openIncidents) Collect(ch chan<- prometheus.Metric) {
	counts := map[[2]string]int{}
	for _, s := range []string{"S1", "S2", "S3", "S4"} {
		counts[[2]string{s, "false"}] = 0
	}
	err := o.st.View(context.Background(), func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		for _, inc := range open {
			counts[[2]string{inc.Severity, strconv.FormatBool(inc.Drill)}]++
		}
		return err
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(openIncidentsDesc, err)
		return
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(openIncidentsDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

// heartbeatPings reports when each configured heartbeat last pinged (unix
// seconds; 0 before its first), read from the store at scrape time, so
// that every replica reports the pings any of them received; and when this
// process will call it silent (CheckHeartbeats), so that a rule can compare
// that with time() without knowing each heartbeat's interval and grace.
type heartbeatPings struct {
	st      Store
	pol     *policy.Policy
	started time.Time // the service's start: the grace counts from it too
}

var (
	heartbeatPingDesc = prometheus.NewDesc("responder_heartbeat_last_ping_timestamp_seconds",
		"When each heartbeat of the dead-man's switch last pinged, in unix seconds; 0 before its first ping.", []string{"heartbeat"}, nil)
	heartbeatDeadlineDesc = prometheus.NewDesc("responder_heartbeat_deadline_timestamp_seconds",
		"When this process calls each heartbeat silent unless it pings first, in unix seconds: its last ping "+
			"(or the daemon's start, when later) plus its interval and grace.", []string{"heartbeat"}, nil)
)

func (h heartbeatPings) Describe(ch chan<- *prometheus.Desc) {
	ch <- heartbeatPingDesc
	ch <- heartbeatDeadlineDesc
}

func (h heartbeatPings) Collect(ch chan<- prometheus.Metric) {
	if h.pol == nil || len(h.pol.Heartbeats) == 0 {
		return
	}
	last := map[string]time.Time{}
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		for _, hb := range h.pol.Heartbeats {
			st, err := tx.Heartbeat(hb.Name)
			switch {
			case err == nil:
				last[hb.Name] = st.LastPing
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		return nil
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(heartbeatPingDesc, err)
		ch <- prometheus.NewInvalidMetric(heartbeatDeadlineDesc, err)
		return
	}
	for _, hb := range h.pol.Heartbeats {
		var ping float64
		if t := last[hb.Name]; !t.IsZero() {
			ping = float64(t.Unix())
		}
		ch <- prometheus.MustNewConstMetric(heartbeatPingDesc, prometheus.GaugeValue, ping, hb.Name)
		// The same decision CheckHeartbeats makes: when Silent's answer
		// turns true (the time it returns does not depend on now).
		_, at := hb.Silent(last[hb.Name], h.started, h.started)
		ch <- prometheus.MustNewConstMetric(heartbeatDeadlineDesc, prometheus.GaugeValue, float64(at.UnixNano())/1e9, hb.Name)
	}
}
