package grpcapi

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"plaza/internal/prom"
)

type metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// newMetrics registers the gRPC metrics. Labels stay bounded: only registered methods
// reach the interceptors (the server answers unknown ones itself), and codes are 17.
func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		calls: prom.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plaza_grpc_requests_total",
			Help: "gRPC calls by full method, kind (unary or stream) and status code.",
		}, []string{"method", "kind", "code"})),
		duration: prom.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plaza_grpc_request_duration_seconds",
			Help:    "gRPC call duration by full method and kind (a stream: how long it stayed open).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 30, 300},
		}, []string{"method", "kind"})),
		inFlight: prom.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plaza_grpc_requests_in_flight",
			Help: "gRPC calls being served, open streams included.",
		})),
	}
}

func (m *metrics) observe(method, kind string, code codes.Code, d time.Duration) {
	m.calls.WithLabelValues(method, kind, code.String()).Inc()
	m.duration.WithLabelValues(method, kind).Observe(d.Seconds())
}
