package httpapi

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	// series holds each label set's counter and histogram once looked up (a seriesKey
	// to a *series): one map read per request instead of two WithLabelValues, which hash
	// every label and take the vector's lock each. Routes, methods and classes are
	// bounded, so this is too.
	series sync.Map
}

type seriesKey struct{ method, route, class string }

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plaza_http_requests_total",
			Help: "HTTP requests by method, route pattern and status class.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plaza_http_request_duration_seconds",
			Help:    "HTTP request duration by method, route pattern and status class.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plaza_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.inFlight)
	}
	return m
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *httpMetrics) observe(method, pattern string, status int, d time.Duration) {
	class := strconv.Itoa(status)
	if i := status/100 - 1; i >= 0 && i < len(statusClasses) {
		class = statusClasses[i]
	}
	route := routeLabel(pattern)
	if !knownMethod(method) {
		method = "OTHER"
	}
	k := seriesKey{method, route, class}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &series{
			requests: m.requests.WithLabelValues(method, route, class),
			duration: m.duration.WithLabelValues(method, route, class),
		})
	}
	ser := v.(*series)
	ser.requests.Inc()
	ser.duration.Observe(d.Seconds())
}

// routeLabel is the mux pattern without its method, never the raw path, so label
// cardinality stays bounded.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == ' ' {
			return pattern[i+1:]
		}
	}
	return pattern
}

func knownMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return true
	}
	return false
}
