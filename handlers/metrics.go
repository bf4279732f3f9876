package handlers

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/responder-sre/responder/store"
)

// Reasons a webhook request is refused, as responder_alerts_rejected_total
// labels them. The two that shed load (503 + Retry-After) are what the
// alert ResponderSheddingWebhooks watches.
const (
	// reasonBusy: the store refused the write (its queue is full, it is
	// closed or unreachable).
	reasonBusy = "busy"
	// reasonInFlight: http.max_ingest_in_flight webhooks were being
	// handled already (admit), so the body was never read.
	reasonInFlight = "in_flight"
)

// metrics are what the HTTP layer counts: webhook requests it refused
// before or instead of the incident service, and whether it is ready. They
// live in the registry passed in, never the global one.
type metrics struct {
	alertsRejected *prometheus.CounterVec
}

// newMetrics registers the HTTP layer's metrics in reg; ready is the check
// /readyz answers with, run again at every scrape for responder_ready.
func newMetrics(reg prometheus.Registerer, ready func() error) *metrics {
	m := &metrics{
		alertsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_alerts_rejected_total",
			Help: "Webhook requests refused, by source and reason.",
		}, []string{"source", "reason"}),
	}
	// The load-shedding series of every alert source exist at zero from
	// the start: a series that first appears at 1 shows no increase to
	// rate(), and the first burst of 503s would go unseen.
	for _, src := range []store.Source{store.SourceAlertmanager, store.SourceOpsGenie, store.SourceJSM, store.SourcePagerDuty} {
		for _, reason := range []string{reasonBusy, reasonInFlight} {
			m.alertsRejected.WithLabelValues(string(src), reason)
		}
	}
	reg.MustRegister(m.alertsRejected, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "responder_ready",
		Help: "1 when /readyz answers 200 (the store accepts writes and the dispatcher runs), 0 otherwise; checked at scrape time.",
	}, func() float64 {
		if ready() != nil {
			return 0
		}
		return 1
	}))
	return m
}

// sourceOfRoute names the sender of a webhook route (echo's route path,
// as c.Path() gives it) for the metrics: the alert source of
// /api/v1/alerts/<source>, "heartbeat" or "slack" for theirs.
func sourceOfRoute(route string) string {
	rest := strings.TrimPrefix(route, "/api/v1/")
	switch {
	case strings.HasPrefix(rest, "alerts/"):
		return strings.TrimPrefix(rest, "alerts/")
	case strings.HasPrefix(rest, "heartbeats/"):
		return string(store.SourceHeartbeat)
	case strings.HasPrefix(rest, "slack/"):
		return "slack"
	}
	return "other"
}
