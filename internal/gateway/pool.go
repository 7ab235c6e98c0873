package gateway

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// upstream is one address of a pool with everything the balancer weighs: load (requests
// and open streams), active health, passive ejection and the circuit breaker.
type upstream struct {
	id, addr, zone string

	inflight atomic.Int64 // ordinary requests
	streams  atomic.Int64 // open WebSocket, SSE and gRPC streams
	healthy  atomic.Bool  // the last active checks passed
	breaker  *gobreaker.TwoStepCircuitBreaker[struct{}]

	mu           sync.Mutex
	failures     int // consecutive 5xx and connect errors
	ejections    int // times ejected in a row; reset by a success after the ejection
	ejectedUntil time.Time
	checkFails   int // consecutive failed active checks
	checkPasses  int
}

// available reports whether the balancer may choose u now.
func (u *upstream) available(now time.Time) bool {
	if !u.healthy.Load() || u.breaker.State() == gobreaker.StateOpen {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return !now.Before(u.ejectedUntil)
}

// pool is a named set of upstreams and how to choose among them.
type pool struct {
	name string
	zone string // the gateway's: its upstreams are preferred

	mu       sync.RWMutex
	members  []*upstream // ordered by id
	balancer string
	outlier  OutlierConfig
	breaker  BreakerConfig

	rr      atomic.Uint64
	onState func(u *upstream, from, to gobreaker.State)
}

// pick chooses an upstream for a request (stream: by open streams, else by in-flight
// requests), skipping those in tried. Unavailable upstreams are skipped unless none is
// available, in which case the healthy ones are tried anyway: a pool whose every member
// is ejected or open is better served by a probe than by nothing.
func (p *pool) pick(stream bool, tried []*upstream) *upstream {
	now := time.Now()
	p.mu.RLock()
	members, balancer := p.members, p.balancer
	p.mu.RUnlock()
	var cands []*upstream
	for _, u := range members {
		if u.available(now) && !slices.Contains(tried, u) {
			cands = append(cands, u)
		}
	}
	if len(cands) == 0 {
		for _, u := range members {
			if u.healthy.Load() && !slices.Contains(tried, u) {
				cands = append(cands, u)
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	if p.zone != "" {
		var local []*upstream
		for _, u := range cands {
			if u.zone == p.zone {
				local = append(local, u)
			}
		}
		if len(local) > 0 {
			cands = local
		}
	}
	if len(cands) == 1 {
		return cands[0]
	}
	if balancer == "round_robin" {
		return cands[p.rr.Add(1)%uint64(len(cands))]
	}
	// Power of two choices: two at random, the less loaded wins. Nearly as good as the
	// least loaded of all, without every gateway herding onto the same one.
	i := rand.IntN(len(cands))
	j := rand.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	load := func(u *upstream) int64 {
		if stream {
			return u.streams.Load()
		}
		return u.inflight.Load()
	}
	if load(b) < load(a) {
		return b
	}
	return a
}

// sync makes the pool hold exactly the given addresses (id → addr, zone), keeping the
// state of those it had. New upstreams start healthy: an instance registers only once it
// is ready.
func (p *pool) sync(want []member) (added, removed []*upstream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := map[string]*upstream{}
	for _, u := range p.members {
		old[u.id+"|"+u.addr] = u
	}
	next := make([]*upstream, 0, len(want))
	for _, m := range want {
		key := m.id + "|" + m.addr
		if u, ok := old[key]; ok {
			u.zone = m.zone
			next = append(next, u)
			delete(old, key)
			continue
		}
		u := p.newUpstream(m)
		next = append(next, u)
		added = append(added, u)
	}
	for _, u := range old {
		removed = append(removed, u)
	}
	slices.SortFunc(next, func(a, b *upstream) int {
		if a.id < b.id {
			return -1
		}
		if a.id > b.id {
			return 1
		}
		return 0
	})
	p.members = next
	return added, removed
}

type member struct{ id, addr, zone string }

func (p *pool) newUpstream(m member) *upstream {
	u := &upstream{id: m.id, addr: m.addr, zone: m.zone}
	u.healthy.Store(true)
	threshold := uint32(p.breaker.ConsecutiveFailures)
	u.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        p.name + "/" + m.addr,
		MaxRequests: 1,
		Timeout:     p.breaker.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		IsExcluded:  func(err error) bool { return errors.Is(err, errClientGone) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if p.onState != nil {
				p.onState(u, from, to)
			}
		},
	})
	return u
}

func (p *pool) snapshot() []*upstream {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.members
}

// failed records a 5xx or connect error from u and ejects it after
// outlier.ConsecutiveFailures in a row, unless that would eject more than
// MaxEjectedPercent of the pool. It reports whether u was ejected now and for how long.
func (p *pool) failed(u *upstream) (time.Duration, bool) {
	now := time.Now()
	p.mu.RLock()
	members, o := p.members, p.outlier
	p.mu.RUnlock()
	u.mu.Lock()
	u.failures++
	due := u.failures >= o.ConsecutiveFailures && !now.Before(u.ejectedUntil)
	u.mu.Unlock()
	if !due {
		return 0, false
	}
	ejected := 0
	for _, m := range members {
		if m != u {
			m.mu.Lock()
			if now.Before(m.ejectedUntil) {
				ejected++
			}
			m.mu.Unlock()
		}
	}
	if (ejected+1)*100 > o.MaxEjectedPercent*len(members) && ejected > 0 {
		return 0, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	d := o.BaseEjection << min(u.ejections, 16)
	d = min(d, o.MaxEjection)
	u.ejections++
	u.failures = 0
	u.ejectedUntil = now.Add(d)
	return d, true
}

// succeeded resets u's run of failures; a success after an ejection also resets the
// back-off.
func (p *pool) succeeded(u *upstream) {
	u.mu.Lock()
	u.failures = 0
	if time.Now().After(u.ejectedUntil) {
		u.ejections = 0
	}
	u.mu.Unlock()
}
