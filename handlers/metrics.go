package handlers

import "github.com/prometheus/client_golang/prometheus"

// metrics are what the HTTP layer counts: webhook requests it refused
// before or instead of the incident service. They live in the registry
// passed in, never the global one.
type metrics struct {
	alertsRejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		alertsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_alerts_rejected_total",
			Help: "Webhook requests refused, by source and reason.",
		}, []string{"source", "reason"}),
	}
	reg.MustRegister(m.alertsRejected)
	return m
}
