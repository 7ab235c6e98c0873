package gateway

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"plaza/internal/redistest"
)

// TestLeasesNeverAdmitPastTheSharedLimit: two gateways taking a large limit from Redis a
// lease at a time admit, between them, no more than the limit allows (its burst and what
// refilled meanwhile), and lose at most a lease each of it.
func TestLeasesNeverAdmitPastTheSharedLimit(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t, redistest.URL(t))
	newL := func() *limiter {
		return newLimiter(client, slog.New(slog.DiscardHandler), prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}),
			prometheus.NewCounter(prometheus.CounterOpts{Name: "c"}))
	}
	a, b := newL(), newL()
	lim := Limit{Rate: 1000, Burst: 2000} // leases of 10
	if n := leaseSize(lim); n != 10 {
		t.Fatalf("leaseSize = %d, want 10", n)
	}
	key := t.Name() + time.Now().String()
	start := time.Now()
	admitted := 0
	for i := range 6000 {
		l := a
		if i%3 == 0 {
			l = b
		}
		if l.allow(t.Context(), "client", key, lim).ok {
			admitted++
		}
	}
	elapsed := time.Since(start)
	most := lim.Burst + int(lim.Rate*elapsed.Seconds()) + 1
	least := lim.Burst - 2*leaseSize(lim)
	if admitted > most || admitted < least {
		t.Fatalf("admitted %d of 6000 in %s; want between %d and %d", admitted, elapsed, least, most)
	}
	if a.local.Load() || b.local.Load() {
		t.Fatal("a limiter fell back to counting alone")
	}
}
