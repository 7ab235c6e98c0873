package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

func TestLimiterRefusesPastTheBurstPerKey(t *testing.T) {
	t.Parallel()
	l := New(1, 3)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("ip:a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, retry := l.Allow("ip:a")
	if ok || retry <= 0 || retry > time.Second {
		t.Fatalf("past the burst: ok %v, retry %s", ok, retry)
	}
	if ok, _ := l.Allow("user:b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow("ip:a"); !ok {
		t.Fatal("no token after a second at one a second")
	}
}

func TestLimiterEvictsIdleClients(t *testing.T) {
	t.Parallel()
	l := New(10, 10)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := range 5000 {
		l.Allow("ip:" + strconv.Itoa(i))
	}
	if l.size() != 5000 {
		t.Fatalf("size %d", l.size())
	}
	now = now.Add(2 * l.idle)
	l.Allow("fresh")
	if l.size() != 1 {
		t.Fatalf("idle clients kept: %d", l.size())
	}
	l.maxKeys = 100
	for i := range 1000 {
		l.Allow("user:" + strconv.Itoa(i))
	}
	if l.size() > 100 {
		t.Fatalf("size %d over the cap", l.size())
	}
}

// BenchmarkRateLimiter takes a token per request, as the middleware does, at a rate no
// client reaches: one client, 10,000 clients in turn, and one client from every core.
func BenchmarkRateLimiter(b *testing.B) {
	b.Run("one_client", func(b *testing.B) {
		l := New(1e9, 1_000_000)
		b.ReportAllocs()
		for b.Loop() {
			if ok, _, _ := l.Take("ip:192.0.2.1"); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("clients=10000", func(b *testing.B) {
		l := New(1e9, 1_000_000)
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = "ip:10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if ok, _, _ := l.Take(keys[i%len(keys)]); !ok {
				b.Fatal("refused")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := New(1e9, 1_000_000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Take("ip:192.0.2.1")
			}
		})
	})
}
