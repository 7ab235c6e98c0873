// Package prom holds the Prometheus helpers the backends share.
package prom

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers col with reg, or returns the collector already registered under
// its name, so that two caches or buses (or one re-created in a test) can share one
// registry. Any other registration error is a programming error and panics.
func Register[C prometheus.Collector](reg prometheus.Registerer, col C) C {
	if err := reg.Register(col); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("register metric: %v", err))
	}
	return col
}

// Inc adds one to c unless it is nil: metrics are optional, and a nil counter stands
// for "not registered".
func Inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}
