package gateway

import (
	"testing"
	"time"
)

func testPool(n int, balancer string) *pool {
	p := &pool{name: "t", balancer: balancer,
		outlier: OutlierConfig{ConsecutiveFailures: 2, BaseEjection: time.Minute, MaxEjection: 4 * time.Minute, MaxEjectedPercent: 50},
		breaker: BreakerConfig{ConsecutiveFailures: 100, OpenFor: time.Minute}}
	var ms []member
	for i := range n {
		ms = append(ms, member{id: string(rune('a' + i)), addr: string(rune('a' + i)), zone: []string{"z1", "z2"}[i%2]})
	}
	p.sync(ms)
	return p
}

// TestP2CPrefersTheLessLoaded: of two choices the one with fewer requests in flight wins,
// so a loaded upstream is chosen only when drawn with a worse one.
func TestP2CPrefersTheLessLoaded(t *testing.T) {
	t.Parallel()
	p := testPool(2, "p2c")
	busy := p.snapshot()[0]
	busy.inflight.Store(10)
	for range 100 {
		if p.pick(false, nil) == busy {
			t.Fatal("chose the busier of two")
		}
	}
	// Streams are weighed by open streams, not requests.
	busy.streams.Store(0)
	p.snapshot()[1].streams.Store(5)
	if p.pick(true, nil) != busy {
		t.Fatal("stream not sent to the upstream with fewer open streams")
	}
}

func TestRoundRobinAndZonePreference(t *testing.T) {
	t.Parallel()
	p := testPool(4, "round_robin")
	seen := map[*upstream]int{}
	for range 8 {
		seen[p.pick(false, nil)]++
	}
	if len(seen) != 4 {
		t.Fatalf("round robin reached %d of 4", len(seen))
	}
	p.zone = "z2"
	for range 20 {
		if u := p.pick(false, nil); u.zone != "z2" {
			t.Fatalf("picked %s in zone %s", u.addr, u.zone)
		}
	}
	// With its zone's upstreams tried, another zone serves.
	z2 := []*upstream{p.snapshot()[1], p.snapshot()[3]}
	if u := p.pick(false, z2); u == nil || u.zone != "z1" {
		t.Fatalf("no fallback to another zone: %v", u)
	}
}

// TestEjectionBacksOffAndIsCapped: consecutive failures eject for the base time, doubled
// at the next ejection; never more than the cap's share of the pool is out at once.
func TestEjectionBacksOffAndIsCapped(t *testing.T) {
	t.Parallel()
	p := testPool(4, "p2c")
	us := p.snapshot()
	if _, ej := p.failed(us[0]); ej {
		t.Fatal("ejected after one failure")
	}
	d, ej := p.failed(us[0])
	if !ej || d != time.Minute || us[0].available(time.Now()) {
		t.Fatalf("second failure: ejected %v for %v", ej, d)
	}
	p.failed(us[1])
	if _, ej := p.failed(us[1]); !ej {
		t.Fatal("second upstream not ejected (2 of 4 is within 50%)")
	}
	p.failed(us[2])
	if _, ej := p.failed(us[2]); ej {
		t.Fatal("a third of four ejected: over the 50% cap")
	}
	for range 20 {
		if u := p.pick(false, nil); u == us[0] || u == us[1] {
			t.Fatalf("picked ejected %s", u.addr)
		}
	}
	// Back from ejection without a success in between, the next one lasts twice as long.
	us[0].mu.Lock()
	us[0].ejectedUntil = time.Now().Add(-time.Second)
	us[0].mu.Unlock()
	p.failed(us[0])
	if d, ej := p.failed(us[0]); !ej || d != 2*time.Minute {
		t.Fatalf("second ejection: %v %v", ej, d)
	}
}

// TestRetryBudget: retries stop at the share of requests (plus the floor).
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	var b budget
	b.set(0.2, 0)
	for range 100 {
		b.request()
	}
	n := 0
	for b.retry() {
		n++
		if n > 100 {
			break
		}
	}
	if n != 20 {
		t.Fatalf("%d retries for 100 requests, want 20", n)
	}
}
