package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's own, per route and per upstream.
type metrics struct {
	requests        *prometheus.CounterVec   // route, method, status class
	duration        *prometheus.HistogramVec // route
	upstream        *prometheus.CounterVec   // pool, upstream, outcome
	available       *prometheus.GaugeVec     // pool, upstream: 1 while the balancer may choose it
	ejections       *prometheus.CounterVec   // pool, upstream
	retries         *prometheus.CounterVec   // route, reason
	budgetExhausted prometheus.Counter
	limited         *prometheus.CounterVec // scope
	limitLocal      prometheus.Gauge
	limitFallbacks  prometheus.Counter
	reloads         *prometheus.CounterVec // result
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plaza_gateway_requests_total",
			Help: "Requests the gateway answered, by route, method and status class."}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "plaza_gateway_request_duration_seconds",
			Help: "Time to answer a request, by route (a stream: until it ended).", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"route"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plaza_gateway_upstream_requests_total",
			Help: "Attempts sent to an upstream, by pool, upstream address and outcome (ok, 5xx, connect_error, error)."}, []string{"pool", "upstream", "outcome"}),
		available: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "plaza_gateway_upstream_available",
			Help: "1 while the balancer may choose the upstream (healthy, not ejected, breaker not open)."}, []string{"pool", "upstream"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plaza_gateway_upstream_ejections_total",
			Help: "Passive ejections after consecutive failures."}, []string{"pool", "upstream"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plaza_gateway_retries_total",
			Help: "Retries on another upstream, by route and reason (connect, idempotent)."}, []string{"route", "reason"}),
		budgetExhausted: prometheus.NewCounter(prometheus.CounterOpts{Name: "plaza_gateway_retry_budget_exhausted_total",
			Help: "Retries not made because the retry budget was spent."}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plaza_gateway_rate_limited_total",
			Help: "Requests refused 429, by limit (client, or the route's name)."}, []string{"scope"}),
		limitLocal: prometheus.NewGauge(prometheus.GaugeOpts{Name: "plaza_gateway_rate_limit_local",
			Help: "1 while rate limits are counted by this gateway alone (Redis unreachable or not configured)."}),
		limitFallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "plaza_gateway_rate_limit_fallbacks_total",
			Help: "Times this gateway fell back to counting rate limits alone because Redis could not answer (the gauge may be back to 0 by the next scrape)."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plaza_gateway_config_reloads_total",
			Help: "Configuration reloads, by result (ok, error)."}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.duration, m.upstream, m.available, m.ejections, m.retries, m.budgetExhausted, m.limited, m.limitLocal, m.limitFallbacks, m.reloads)
	return m
}
