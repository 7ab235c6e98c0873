package realtime

import "github.com/prometheus/client_golang/prometheus"

// metrics of the real-time transports, by transport ("ws", "sse").
type metrics struct {
	open     *prometheus.GaugeVec   // connections open now
	in       *prometheus.CounterVec // frames received from clients
	out      *prometheus.CounterVec // frames and events sent to clients
	dropped  *prometheus.CounterVec // frames not delivered because a connection's queue was full
	slowCuts *prometheus.CounterVec // connections closed because they did not keep up
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "plaza_realtime_connections", Help: "Open WebSocket connections and SSE streams.",
		}, []string{"transport"}),
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plaza_realtime_messages_in_total", Help: "Frames received from clients.",
		}, []string{"transport"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plaza_realtime_messages_out_total", Help: "Frames and events written to clients.",
		}, []string{"transport"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plaza_realtime_dropped_total", Help: "Frames not delivered because the connection's send queue was full.",
		}, []string{"transport"}),
		slowCuts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plaza_realtime_slow_consumers_total", Help: "Connections closed because they did not keep up.",
		}, []string{"transport"}),
	}
	if reg != nil {
		reg.MustRegister(m.open, m.in, m.out, m.dropped, m.slowCuts)
	}
	return m
}
