package bus

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"plaza/internal/plaza"
	"plaza/internal/prom"
)

// MemoryOptions configure NewMemory. The zero value works.
type MemoryOptions struct {
	// Retain is how many recent events each stream keeps for replay (default DefaultRetain).
	Retain int
	// BufferSize bounds each subscription's backlog of live events (default 256).
	BufferSize int
	// Registerer, when set, receives the bus metrics.
	Registerer prometheus.Registerer
	// Now is the clock used for event IDs (default time.Now).
	Now func() time.Time
}

// NewMemory returns a bus that lives in this process: one instance only.
func NewMemory(opts MemoryOptions) Bus {
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &memoryBus{opts: opts, m: newMetrics(opts.Registerer, "memory"), streams: map[string]*memoryStream{}}
}

type memoryBus struct {
	opts MemoryOptions
	m    metrics

	mu      sync.Mutex // guards streams and closed, never held while a stream's lock is wanted by it
	streams map[string]*memoryStream
	closed  bool
}

// memoryStream holds one stream's retained events and subscribers. Its mutex serializes
// publishing, subscribing and ending subscriptions, so every send on a subscription's
// channel and its close happen under the same lock and can never race.
type memoryStream struct {
	mu    sync.Mutex
	last  position
	ring  []plaza.Event // retained events, oldest at ring[start]
	start int
	// evicted is the newest event pushed out of the ring: a resume before it has a gap.
	evicted position
	// seen and byKey catch an event published twice: the second Publish returns the
	// first one, appending and delivering nothing.
	seen   seen
	byKey  map[string]plaza.Event
	subs   map[*memorySub]struct{}
	closed bool
}

func (b *memoryBus) stream(name string) (*memoryStream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	s := b.streams[name]
	if s == nil {
		// The ring grows as events come rather than taking Retain slots up front: most
		// streams (a quiet chat room) never fill it.
		s = &memoryStream{subs: map[*memorySub]struct{}{}}
		b.streams[name] = s
	}
	return s, nil
}

func (b *memoryBus) Publish(ctx context.Context, stream string, ev plaza.Event) (plaza.Event, error) {
	if err := ctx.Err(); err != nil {
		return plaza.Event{}, err
	}
	s, err := b.stream(stream)
	if err != nil {
		return plaza.Event{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return plaza.Event{}, ErrClosed
	}
	if prev, ok := s.byKey[ev.Key]; ok && ev.Key != "" {
		return prev, nil
	}
	// The same rule as Redis: milliseconds of the clock, a sequence within one
	// millisecond, never going backwards when the clock does.
	now := uint64(b.opts.Now().UnixMilli())
	if now > s.last.ms {
		s.last = position{ms: now}
	} else {
		s.last.seq++
	}
	ev.ID = s.last.String()
	if ev.Key != "" {
		if s.byKey == nil {
			s.byKey = map[string]plaza.Event{}
		}
		if len(s.seen.ring) == DedupeWindow {
			delete(s.byKey, s.seen.ring[s.seen.next]) // about to leave the window
		}
		s.seen.add(ev.Key)
		s.byKey[ev.Key] = ev
	}
	if len(s.ring) < b.opts.Retain {
		s.ring = append(s.ring, ev)
	} else {
		s.evicted, _ = parsePosition(s.ring[s.start].ID)
		s.ring[s.start] = ev
		s.start = (s.start + 1) % len(s.ring)
	}
	prom.Inc(b.m.published)
	for sub := range s.subs {
		select {
		case sub.ch <- ev:
			prom.Inc(b.m.delivered)
		default:
			prom.Inc(b.m.slow)
			s.endLocked(sub, ErrSlowConsumer)
		}
	}
	return ev, nil
}

// retainedAfter returns the retained events after p, oldest first.
func (s *memoryStream) retainedAfter(p position) []plaza.Event {
	n := len(s.ring)
	at := func(i int) plaza.Event { return s.ring[(s.start+i)%n] }
	first := sort.Search(n, func(i int) bool {
		q, _ := parsePosition(at(i).ID)
		return p.less(q)
	})
	out := make([]plaza.Event, 0, n-first)
	for i := first; i < n; i++ {
		out = append(out, at(i))
	}
	return out
}

func (b *memoryBus) Subscribe(ctx context.Context, stream string, after string) (Subscription, error) {
	var from position
	if after != "" {
		p, err := parsePosition(after)
		if err != nil {
			return nil, err
		}
		from = p
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := b.stream(stream)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var replay []plaza.Event
	if after != "" {
		if from != (position{}) && from.less(s.evicted) {
			return nil, ErrTrimmed
		}
		replay = s.retainedAfter(from)
	}
	// The replay gets room of its own so that resuming is not mistaken for falling
	// behind; live events then have the usual bounded buffer.
	sub := &memorySub{stream: s, ch: make(chan plaza.Event, len(replay)+b.opts.BufferSize)}
	for _, ev := range replay {
		sub.ch <- ev
		prom.Inc(b.m.delivered)
	}
	s.subs[sub] = struct{}{}
	sub.stop = context.AfterFunc(ctx, sub.Close)
	return sub, nil
}

// endLocked ends sub with err; s.mu must be held.
func (s *memoryStream) endLocked(sub *memorySub, err error) {
	if _, ok := s.subs[sub]; !ok {
		return
	}
	delete(s.subs, sub)
	sub.mu.Lock()
	sub.err = err
	sub.mu.Unlock()
	close(sub.ch)
	if sub.stop != nil {
		sub.stop()
	}
}

func (b *memoryBus) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

func (b *memoryBus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	streams := b.streams
	b.streams = nil
	b.mu.Unlock()
	for _, s := range streams {
		s.mu.Lock()
		s.closed = true
		for sub := range s.subs {
			s.endLocked(sub, nil)
		}
		s.mu.Unlock()
	}
	return nil
}

type memorySub struct {
	stream *memoryStream
	ch     chan plaza.Event
	stop   func() bool // stops the ctx watcher; set under stream.mu before sub is visible

	mu  sync.Mutex
	err error
}

func (s *memorySub) Events() <-chan plaza.Event { return s.ch }

func (s *memorySub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *memorySub) Close() {
	s.stream.mu.Lock()
	defer s.stream.mu.Unlock()
	s.stream.endLocked(s, nil)
}
