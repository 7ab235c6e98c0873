package bus

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"plaza/internal/plaza"
	"plaza/internal/prom"
	"plaza/internal/redisx"
)

// RedisOptions configure NewRedis. The zero value works.
type RedisOptions struct {
	// Prefix is put before every stream name to form its Redis key (default "plaza:bus:").
	Prefix string
	// Retain is how many recent events each stream keeps for replay: XADD MAXLEN ~ Retain,
	// so Redis may keep somewhat more (default 1000).
	Retain int
	// BufferSize bounds each subscription's backlog of live events (default 256).
	BufferSize int
	// Block is how long one XREAD waits for new events. It bounds how long a closed
	// subscription's reader lingers and so how long Close waits (default 1s).
	Block time.Duration
	// Logger receives connection trouble of subscriptions (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, receives the bus metrics.
	Registerer prometheus.Registerer
}

// NewRedis returns a bus on Redis Streams: every instance connected to the same Redis
// sees every event. The caller owns client: Close ends the subscriptions, not the client.
func NewRedis(client redis.UniversalClient, opts RedisOptions) Bus {
	if opts.Prefix == "" {
		opts.Prefix = "plaza:bus:"
	}
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.Block <= 0 {
		opts.Block = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &redisBus{
		client: client, opts: opts, m: newMetrics(opts.Registerer, "redis"),
		ctx: ctx, cancel: cancel, subs: map[*redisSub]struct{}{},
	}
}

type redisBus struct {
	client redis.UniversalClient
	opts   RedisOptions
	m      metrics

	ctx    context.Context // ends every reader when the bus closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // readers

	mu     sync.Mutex
	subs   map[*redisSub]struct{}
	closed bool
}

// eventField is the one field of a stream entry; it holds the event as JSON, minus its
// ID, which is the entry's ID.
const eventField = "event"

func (b *redisBus) Publish(ctx context.Context, stream string, ev plaza.Event) (plaza.Event, error) {
	if b.isClosed() {
		return plaza.Event{}, ErrClosed
	}
	ev.ID = ""
	payload, err := json.Marshal(ev)
	if err != nil {
		return plaza.Event{}, plaza.Wrap(plaza.EInternal, err, "cannot encode event")
	}
	id, err := b.client.XAdd(ctx, &redis.XAddArgs{
		Stream: b.opts.Prefix + stream,
		MaxLen: int64(b.opts.Retain),
		Approx: true,
		Values: []any{eventField, payload},
	}).Result()
	if err != nil {
		return plaza.Event{}, redisx.Err(err, "event bus")
	}
	prom.Inc(b.m.published)
	ev.ID = id
	return ev, nil
}

func (b *redisBus) Subscribe(ctx context.Context, stream string, after string) (Subscription, error) {
	if after != "" {
		if _, err := parsePosition(after); err != nil {
			return nil, err
		}
	}
	if b.isClosed() {
		return nil, ErrClosed
	}
	key := b.opts.Prefix + stream
	var replay []plaza.Event
	if after == "" {
		// "Only new events" is resolved to the stream's current last ID now, so events
		// published while the reader starts (or reconnects) are not missed, as they
		// would be with "$".
		msgs, err := b.client.XRevRangeN(ctx, key, "+", "-", 1).Result()
		if err != nil {
			return nil, redisx.Err(err, "event bus")
		}
		after = "0-0"
		if len(msgs) == 1 {
			after = msgs[0].ID
		}
	} else {
		// The retained backlog is read here, like the memory bus does, so it gets room of
		// its own in the channel; whatever Retain's "~" left beyond it the reader picks up.
		msgs, err := b.client.XRangeN(ctx, key, "("+after, "+", int64(b.opts.Retain)).Result()
		if err != nil {
			return nil, redisx.Err(err, "event bus")
		}
		for _, msg := range msgs {
			if ev, ok := b.decode(stream, msg); ok {
				replay = append(replay, ev)
			}
		}
		if len(msgs) > 0 {
			after = msgs[len(msgs)-1].ID
		}
	}

	rctx, cancel := context.WithCancel(b.ctx)
	sub := &redisSub{bus: b, cancel: cancel, ch: make(chan plaza.Event, len(replay)+b.opts.BufferSize)}
	for _, ev := range replay {
		sub.ch <- ev
		prom.Inc(b.m.delivered)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		cancel()
		return nil, ErrClosed
	}
	b.subs[sub] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	// The watcher is set after sub is visible to Close; if sub ended meanwhile, end saw no
	// watcher to stop, so stop it here.
	stop := context.AfterFunc(ctx, sub.Close)
	sub.mu.Lock()
	sub.stop = stop
	ended := sub.ended
	sub.mu.Unlock()
	if ended {
		stop()
	}
	go func() {
		defer b.wg.Done()
		b.read(rctx, sub, stream, key, after)
	}()
	return sub, nil
}

// read follows one stream for sub until rctx ends or sub is cut off. On errors it retries
// with backoff from the last ID it handed over, so nothing still retained is lost.
func (b *redisBus) read(ctx context.Context, sub *redisSub, stream, key, last string) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		res, err := b.client.XRead(ctx, &redis.XReadArgs{
			Streams: []string{key, last},
			Count:   int64(b.opts.BufferSize),
			Block:   b.opts.Block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			backoff = 0
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			wait := backoff/2 + rand.N(backoff/2+1)
			b.opts.Logger.Warn("bus: reading stream failed, retrying", "stream", stream, "after", last, "retry_in", wait, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		backoff = 0
		for _, xs := range res {
			for _, msg := range xs.Messages {
				last = msg.ID
				ev, ok := b.decode(stream, msg)
				if !ok {
					continue
				}
				if !sub.deliver(ev) {
					return
				}
			}
		}
	}
}

func (b *redisBus) decode(stream string, msg redis.XMessage) (plaza.Event, bool) {
	var ev plaza.Event
	raw, _ := msg.Values[eventField].(string)
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		b.opts.Logger.Error("bus: skipping undecodable stream entry", "stream", stream, "id", msg.ID, "err", err)
		return plaza.Event{}, false
	}
	ev.ID = msg.ID
	return ev, true
}

func (b *redisBus) Ping(ctx context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		return redisx.Err(err, "event bus")
	}
	return nil
}

func (b *redisBus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Close ends every subscription and waits for their readers, at most about Block.
func (b *redisBus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for sub := range subs {
		sub.end(nil)
	}
	b.cancel()
	b.wg.Wait()
	return nil
}

// redisSub's channel is sent to only by its reader and closed by end; both hold mu and
// check ended, so a send never meets a closed channel.
type redisSub struct {
	bus    *redisBus
	cancel context.CancelFunc // stops the reader

	mu    sync.Mutex
	ch    chan plaza.Event
	stop  func() bool // stops the watcher of the subscriber's ctx
	ended bool
	err   error
}

// deliver hands ev to the subscriber without waiting; it reports false when the
// subscription has ended, including when ev found the buffer full and ended it.
func (s *redisSub) deliver(ev plaza.Event) bool {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return false
	}
	select {
	case s.ch <- ev:
		s.mu.Unlock()
		prom.Inc(s.bus.m.delivered)
		return true
	default:
		s.mu.Unlock()
		prom.Inc(s.bus.m.slow)
		s.end(ErrSlowConsumer)
		return false
	}
}

func (s *redisSub) end(err error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.err = err
	close(s.ch)
	stop := s.stop
	s.mu.Unlock()

	s.cancel()
	if stop != nil {
		stop()
	}
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
}

func (s *redisSub) Events() <-chan plaza.Event { return s.ch }

func (s *redisSub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *redisSub) Close() { s.end(nil) }
