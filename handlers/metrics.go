package handlers

import "github.com/prometheus/client_golang/prometheus"

// metrics are the counters the handlers move. They live in the registry
// passed in, never the global one.
type metrics struct {
	alertsIngested  *prometheus.CounterVec
	alertsRejected  *prometheus.CounterVec
	incidentsOpened *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, st Store) *metrics {
	m := &metrics{
		alertsIngested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_alerts_ingested_total",
			Help: "Alerts accepted from webhooks, by source.",
		}, []string{"source"}),
		alertsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_alerts_rejected_total",
			Help: "Webhook requests refused, by source and reason.",
		}, []string{"source", "reason"}),
		incidentsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_incidents_opened_total",
			Help: "Incidents opened, by severity and source.",
		}, []string{"severity", "source"}),
	}
	reg.MustRegister(m.alertsIngested, m.alertsRejected, m.incidentsOpened,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "responder_write_queue_depth",
			Help: "Writes waiting for the store's writer.",
		}, func() float64 { return float64(st.QueueDepth()) }),
	)
	return m
}
