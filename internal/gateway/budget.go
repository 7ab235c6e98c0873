package gateway

import (
	"sync"
	"time"
)

// budget bounds retries to a share of the requests of the last ten seconds (plus a
// floor of minPerSecond, so a quiet gateway may still retry): when instances fail, the
// retries add at most that much load to the survivors, instead of multiplying it.
type budget struct {
	mu      sync.Mutex
	ratio   float64
	min     float64
	buckets [10]struct {
		second            int64
		requests, retries float64
	}
}

func (b *budget) set(ratio, minPerSecond float64) {
	b.mu.Lock()
	b.ratio, b.min = ratio, minPerSecond
	b.mu.Unlock()
}

func (b *budget) bucket(now time.Time) int {
	s := now.Unix()
	i := int(s % int64(len(b.buckets)))
	if b.buckets[i].second != s {
		b.buckets[i].second, b.buckets[i].requests, b.buckets[i].retries = s, 0, 0
	}
	return i
}

// request counts an original request.
func (b *budget) request() {
	b.mu.Lock()
	b.buckets[b.bucket(time.Now())].requests++
	b.mu.Unlock()
}

// retry takes a retry from the budget if one is left.
func (b *budget) retry() bool {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.bucket(now)
	var requests, retries float64
	for _, k := range b.buckets {
		if now.Unix()-k.second < int64(len(b.buckets)) {
			requests += k.requests
			retries += k.retries
		}
	}
	if retries >= b.ratio*requests+b.min*float64(len(b.buckets)) {
		return false
	}
	b.buckets[i].retries++
	return true
}
