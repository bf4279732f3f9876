package handlers

import "github.com/prometheus/client_golang/prometheus"

// metrics are the counters the handlers move. They live in the registry
// passed in, never the global one.
type metrics struct {
	alertsIngested  *prometheus.CounterVec
	alertsRejected  *prometheus.CounterVec
	incidentsOpened *prometheus.CounterVec
	reminders       *prometheus.CounterVec
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
		reminders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "responder_reminders_total",
			Help: "Reminders posted, by kind (update, eta, postmortem) and whether the incident is a drill.",
		}, []string{"kind", "drill"}),
	}
	reg.MustRegister(m.alertsIngested, m.alertsRejected, m.incidentsOpened, m.reminders,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "responder_write_queue_depth",
			Help: "Writes waiting for the store's writer.",
		}, func() float64 { return float64(st.QueueDepth()) }),
	)
	return m
}
