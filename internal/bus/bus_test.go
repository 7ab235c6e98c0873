package bus_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"plaza/internal/redistest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"plaza/internal/bus"
	"plaza/internal/plaza"
)

// waitFor bounds every wait in these tests; reaching it means something hangs.
const waitFor = 10 * time.Second

// options are what a contract test may ask of a fresh bus.
type options struct {
	BufferSize int
	Retain     int
}

// newBus returns a fresh, isolated bus; newPeer returns another instance sharing the
// first one's events (nil for backends with a single instance).
type backend struct {
	newBus  func(t *testing.T, o options) (b bus.Bus, newPeer func() bus.Bus)
	isRedis bool
}

func TestMemory(t *testing.T) {
	t.Parallel()
	contract(t, backend{newBus: func(t *testing.T, o options) (bus.Bus, func() bus.Bus) {
		b := bus.NewMemory(bus.MemoryOptions{BufferSize: o.BufferSize, Retain: o.Retain})
		t.Cleanup(func() { b.Close() })
		return b, nil
	}})
}

func TestRedis(t *testing.T) {
	t.Parallel()
	url := redistest.URL(t)
	contract(t, backend{isRedis: true, newBus: func(t *testing.T, o options) (bus.Bus, func() bus.Bus) {
		prefix := "test:bus:" + randomName() + ":"
		open := func() bus.Bus {
			b := bus.NewRedis(newClient(t, url), bus.RedisOptions{Prefix: prefix, BufferSize: o.BufferSize, Retain: o.Retain, Block: 200 * time.Millisecond})
			t.Cleanup(func() { b.Close() })
			return b
		}
		return open(), open
	}})
}

func contract(t *testing.T, be backend) {
	t.Run("an event published again under its key is delivered once, live and replayed", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		sub := subscribe(t, b, "s", "")
		first := publish(t, b, "s", 0)
		again := event(t, 0)
		again.Key = first.Key
		if _, err := b.Publish(t.Context(), "s", again); err != nil {
			t.Fatal(err)
		}
		publish(t, b, "s", 1)
		got := receive(t, sub, 2)
		if n(t, got[0]) != 0 || n(t, got[1]) != 1 {
			t.Fatalf("got n=%d, n=%d; want 0 then 1, the repeat dropped", n(t, got[0]), n(t, got[1]))
		}
		replayed := receive(t, subscribe(t, b, "s", "0-0"), 2)
		if n(t, replayed[0]) != 0 || n(t, replayed[1]) != 1 {
			t.Fatalf("replayed n=%d, n=%d; want 0 then 1", n(t, replayed[0]), n(t, replayed[1]))
		}
	})

	t.Run("publish assigns ordered IDs and subscribers get events in order", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		sub := subscribe(t, b, "s", "")
		var published []plaza.Event
		for i := range 20 {
			published = append(published, publish(t, b, "s", i))
		}
		got := receive(t, sub, 20)
		idForm := regexp.MustCompile(`^\d+-\d+$`)
		for i, ev := range got {
			if !idForm.MatchString(ev.ID) {
				t.Fatalf("event %d: ID %q is not <ms>-<seq>", i, ev.ID)
			}
			if ev.ID != published[i].ID || n(t, ev) != i {
				t.Fatalf("event %d: got ID %s n=%d, want ID %s n=%d", i, ev.ID, n(t, ev), published[i].ID, i)
			}
			if ev.Type != "test.event" || !ev.OccurredAt.Equal(published[i].OccurredAt) {
				t.Fatalf("event %d: got %+v, want %+v", i, ev, published[i])
			}
			if i > 0 && !idLess(got[i-1].ID, ev.ID) {
				t.Fatalf("IDs not increasing: %s then %s", got[i-1].ID, ev.ID)
			}
		}
	})

	t.Run("every subscriber gets every event, and only of its stream", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		a, c := subscribe(t, b, "s", ""), subscribe(t, b, "s", "")
		other := subscribe(t, b, "other", "")
		for i := range 10 {
			publish(t, b, "s", i)
		}
		for _, sub := range []bus.Subscription{a, c} {
			for i, ev := range receive(t, sub, 10) {
				if n(t, ev) != i {
					t.Fatalf("got n=%d at %d", n(t, ev), i)
				}
			}
		}
		expectNothing(t, other)
	})

	t.Run("concurrent publishers: one order, no duplicates", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{BufferSize: 1000})
		sub := subscribe(t, b, "s", "")
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := range 50 {
					if _, err := b.Publish(t.Context(), "s", event(t, i)); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		got := receive(t, sub, 200)
		for i := 1; i < len(got); i++ {
			if !idLess(got[i-1].ID, got[i].ID) {
				t.Fatalf("event %d: ID %s does not follow %s", i, got[i].ID, got[i-1].ID)
			}
		}
	})

	t.Run("resume from a position replays exactly the missed events, then live", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{BufferSize: 4})
		var seen []plaza.Event
		for i := range 3 {
			seen = append(seen, publish(t, b, "s", i))
		}
		for i := 3; i < 10; i++ { // missed while disconnected; more than the live buffer
			publish(t, b, "s", i)
		}
		sub := subscribe(t, b, "s", seen[2].ID)
		publish(t, b, "s", 10)
		for i, ev := range receive(t, sub, 8) {
			if n(t, ev) != 3+i {
				t.Fatalf("replayed event %d: got n=%d, want %d", i, n(t, ev), 3+i)
			}
		}
		expectNothing(t, sub)
		if sub.Err() != nil {
			t.Fatalf("Err() = %v while running", sub.Err())
		}

		all := subscribe(t, b, "s", "0-0")
		if got := receive(t, all, 11); n(t, got[0]) != 0 || n(t, got[10]) != 10 {
			t.Fatalf("from 0-0: got n=%d..%d, want 0..10", n(t, got[0]), n(t, got[10]))
		}
	})

	t.Run(`"" subscribes to new events only`, func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		for i := range 3 {
			publish(t, b, "s", i)
		}
		sub := subscribe(t, b, "s", "")
		publish(t, b, "s", 3)
		if ev := receive(t, sub, 1)[0]; n(t, ev) != 3 {
			t.Fatalf("got n=%d, want 3", n(t, ev))
		}
		expectNothing(t, sub)
	})

	t.Run("a malformed position is a bad request", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		for _, after := range []string{"abc", "12", "1-", "-1", "1-2-3", "$"} {
			_, err := b.Subscribe(t.Context(), "s", after)
			if plaza.ErrorCodeOf(err) != plaza.EBadRequest {
				t.Errorf("Subscribe(after=%q) = %v, want a bad_request error", after, err)
			}
		}
	})

	t.Run("a slow subscriber is cut off; publishers and fast subscribers go on", func(t *testing.T) {
		t.Parallel()
		const buffer, total = 8, 100
		b, _ := be.newBus(t, options{BufferSize: buffer})
		slow := subscribe(t, b, "s", "")
		fast := subscribe(t, b, "s", "")
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range total {
				ev, err := b.Publish(t.Context(), "s", event(t, i))
				if err != nil {
					t.Error(err)
					return
				}
				// The fast subscriber keeps up: it takes each event as it comes.
				select {
				case got := <-fast.Events():
					if got.ID != ev.ID {
						t.Errorf("fast subscriber: got %s, want %s", got.ID, ev.ID)
						return
					}
				case <-time.After(waitFor):
					t.Errorf("fast subscriber: event %d not delivered", i)
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(2 * waitFor):
			t.Fatal("publishing blocked behind a slow subscriber")
		}
		got := drain(t, slow)
		if !errors.Is(slow.Err(), bus.ErrSlowConsumer) {
			t.Fatalf("slow subscriber: Err() = %v, want ErrSlowConsumer", slow.Err())
		}
		if len(got) == 0 || len(got) > buffer {
			t.Fatalf("slow subscriber got %d events before the cut, want 1..%d", len(got), buffer)
		}
		if fast.Err() != nil {
			t.Fatalf("fast subscriber: Err() = %v", fast.Err())
		}
	})

	t.Run("Close of a subscription ends it and only it", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		a, c := subscribe(t, b, "s", ""), subscribe(t, b, "s", "")
		a.Close()
		a.Close() // idempotent
		drain(t, a)
		if a.Err() != nil {
			t.Fatalf("Err() after Close = %v, want nil", a.Err())
		}
		publish(t, b, "s", 1)
		receive(t, c, 1)
	})

	t.Run("cancelling the context ends the subscription", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		ctx, cancel := context.WithCancel(t.Context())
		sub, err := b.Subscribe(ctx, "s", "")
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		drain(t, sub)
		if sub.Err() != nil {
			t.Fatalf("Err() after cancel = %v, want nil", sub.Err())
		}
	})

	t.Run("closing the bus ends every subscription and refuses new work", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		subs := []bus.Subscription{subscribe(t, b, "s", ""), subscribe(t, b, "t", "")}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		for _, sub := range subs {
			drain(t, sub)
			if sub.Err() != nil {
				t.Fatalf("Err() after bus Close = %v, want nil", sub.Err())
			}
		}
		if _, err := b.Publish(t.Context(), "s", event(t, 0)); !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Publish after Close = %v, want ErrClosed", err)
		}
		if _, err := b.Subscribe(t.Context(), "s", ""); !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
		}
		if err := b.Ping(t.Context()); err == nil {
			t.Fatal("Ping after Close = nil, want an error")
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
	})

	t.Run("resuming before the retained history is ErrTrimmed; 0-0 takes what is kept", func(t *testing.T) {
		t.Parallel()
		// Redis trims whole nodes of 100 entries with MAXLEN ~, so the history must be a
		// few nodes long before anything goes.
		b, _ := be.newBus(t, options{Retain: 10, BufferSize: 1000})
		var evs []plaza.Event
		for i := range 250 {
			evs = append(evs, publish(t, b, "s", i))
		}
		if _, err := b.Subscribe(t.Context(), "s", evs[0].ID); !errors.Is(err, bus.ErrTrimmed) {
			t.Fatalf("Subscribe(after the first event) = %v, want ErrTrimmed", err)
		}
		sub := subscribe(t, b, "s", evs[240].ID)
		for i, ev := range receive(t, sub, 9) {
			if n(t, ev) != 241+i {
				t.Fatalf("replayed %d: n=%d", i, n(t, ev))
			}
		}
		all := subscribe(t, b, "s", "0-0")
		if got := receive(t, all, 10); n(t, got[9]) > 249 || n(t, got[0]) < 1 {
			t.Fatalf("0-0 replayed n=%d..%d", n(t, got[0]), n(t, got[9]))
		}
	})

	t.Run("a subscriber joining a stream that is being read gets no gap and no duplicate", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{BufferSize: 1000})
		first := subscribe(t, b, "s", "")
		var evs []plaza.Event
		for i := range 20 {
			evs = append(evs, publish(t, b, "s", i))
		}
		receive(t, first, 20) // the stream's reader is now past every event
		late := subscribe(t, b, "s", evs[4].ID)
		publish(t, b, "s", 20)
		for i, ev := range receive(t, late, 16) {
			if n(t, ev) != 5+i {
				t.Fatalf("late subscriber event %d: n=%d, want %d", i, n(t, ev), 5+i)
			}
		}
		expectNothing(t, late)
	})

	t.Run("ping", func(t *testing.T) {
		t.Parallel()
		b, _ := be.newBus(t, options{})
		if err := b.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	})

	if !be.isRedis {
		return
	}
	t.Run("an event published on one instance reaches subscribers on another", func(t *testing.T) {
		t.Parallel()
		a, peer := be.newBus(t, options{})
		c := peer()
		subA, subC := subscribe(t, a, "s", ""), subscribe(t, c, "s", "")
		published := publish(t, c, "s", 7)
		for _, sub := range []bus.Subscription{subA, subC} {
			if got := receive(t, sub, 1)[0]; got.ID != published.ID || n(t, got) != 7 {
				t.Fatalf("got %s n=%d, want %s n=7", got.ID, n(t, got), published.ID)
			}
		}
	})
}

func TestMemoryRetainsTheLastN(t *testing.T) {
	t.Parallel()
	b := bus.NewMemory(bus.MemoryOptions{Retain: 5})
	defer b.Close()
	for i := range 12 {
		publish(t, b, "s", i)
	}
	sub := subscribe(t, b, "s", "0-0")
	for i, ev := range receive(t, sub, 5) {
		if n(t, ev) != 7+i {
			t.Fatalf("replayed %d: got n=%d, want %d", i, n(t, ev), 7+i)
		}
	}
	expectNothing(t, sub)
}

func TestMemoryIDsNeverGoBackwards(t *testing.T) {
	t.Parallel()
	clock := []time.Time{time.UnixMilli(5000), time.UnixMilli(5000), time.UnixMilli(4000), time.UnixMilli(6000)}
	var mu sync.Mutex
	b := bus.NewMemory(bus.MemoryOptions{Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := clock[0]
		clock = clock[1:]
		return now
	}})
	defer b.Close()
	var ids []string
	for i := range 4 {
		ids = append(ids, publish(t, b, "s", i).ID)
	}
	if want := []string{"5000-0", "5000-1", "5000-2", "6000-0"}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("IDs = %v, want %v", ids, want)
	}
}

// TestRedisOneReaderPerStream: many subscribers of one stream cost one blocking XREAD,
// so the client's pool holds a connection or two, not one per subscriber.
func TestRedisOneReaderPerStream(t *testing.T) {
	t.Parallel()
	client := newClient(t, redistest.URL(t))
	b := bus.NewRedis(client, bus.RedisOptions{Prefix: "test:fanout:" + randomName() + ":", Block: 200 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	const subscribers = 500
	subs := make([]bus.Subscription, subscribers)
	for i := range subs {
		subs[i] = subscribe(t, b, "s", "")
	}
	published := publish(t, b, "s", 1)
	for _, sub := range subs {
		if got := receive(t, sub, 1)[0]; got.ID != published.ID {
			t.Fatalf("got %s, want %s", got.ID, published.ID)
		}
	}
	if conns := client.PoolStats().TotalConns; conns > 3 {
		t.Fatalf("%d subscribers hold %d Redis connections, want at most 3", subscribers, conns)
	}
}

// TestRedisSubscriptionSurvivesRestart kills and restarts a Redis server of its own: a
// subscription made before keeps delivering afterwards, without resubscribing.
func TestRedisSubscriptionSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	b := bus.NewRedis(client, bus.RedisOptions{Prefix: "test:restart:", Block: 200 * time.Millisecond})
	t.Cleanup(func() { b.Close() })

	sub := subscribe(t, b, "s", "")
	publish(t, b, "s", 1)
	receive(t, sub, 1)

	srv.Kill()
	if _, err := b.Publish(t.Context(), "s", event(t, 2)); plaza.ErrorCodeOf(err) != plaza.EUnavailable {
		t.Fatalf("Publish with Redis down = %v, want an unavailable error", err)
	}
	time.Sleep(300 * time.Millisecond) // let the reader hit the outage
	srv.Restart()

	var published plaza.Event
	deadline := time.Now().Add(waitFor)
	for {
		ev, err := b.Publish(t.Context(), "s", event(t, 3))
		if err == nil {
			published = ev
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := receive(t, sub, 1)[0]; got.ID != published.ID || n(t, got) != 3 {
		t.Fatalf("after restart got %s n=%d, want %s n=3", got.ID, n(t, got), published.ID)
	}
	if sub.Err() != nil {
		t.Fatalf("Err() = %v", sub.Err())
	}
}

func event(t *testing.T, i int) plaza.Event {
	t.Helper()
	ev, err := plaza.NewEvent("test.event", "actor", map[string]int{"n": i}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func n(t *testing.T, ev plaza.Event) int {
	t.Helper()
	var d struct{ N int }
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("event %s: %v", ev.ID, err)
	}
	return d.N
}

func publish(t *testing.T, b bus.Bus, stream string, i int) plaza.Event {
	t.Helper()
	ev, err := b.Publish(t.Context(), stream, event(t, i))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return ev
}

func subscribe(t *testing.T, b bus.Bus, stream, after string) bus.Subscription {
	t.Helper()
	sub, err := b.Subscribe(t.Context(), stream, after)
	if err != nil {
		t.Fatalf("Subscribe(%q, %q): %v", stream, after, err)
	}
	t.Cleanup(sub.Close)
	return sub
}

func receive(t *testing.T, sub bus.Subscription, count int) []plaza.Event {
	t.Helper()
	var got []plaza.Event
	timeout := time.After(waitFor)
	for len(got) < count {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended after %d of %d events: %v", len(got), count, sub.Err())
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("received %d of %d events", len(got), count)
		}
	}
	return got
}

// expectNothing checks that no further event arrives for a short while.
func expectNothing(t *testing.T, sub bus.Subscription) {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		if ok {
			t.Fatalf("unexpected event %s n=%d", ev.ID, n(t, ev))
		}
		t.Fatalf("subscription ended: %v", sub.Err())
	case <-time.After(300 * time.Millisecond):
	}
}

// drain reads sub until its channel closes and returns what it held.
func drain(t *testing.T, sub bus.Subscription) []plaza.Event {
	t.Helper()
	var got []plaza.Event
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatal("subscription did not end")
		}
	}
}

func idLess(a, b string) bool {
	split := func(id string) (uint64, uint64) {
		ms, seq, _ := strings.Cut(id, "-")
		m, _ := strconv.ParseUint(ms, 10, 64)
		s, _ := strconv.ParseUint(seq, 10, 64)
		return m, s
	}
	am, as := split(a)
	bm, bs := split(b)
	return am < bm || (am == bm && as < bs)
}

func randomName() string { return strings.ToLower(rand.Text()) }

func newClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("PLAZA_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	return client
}

// TestRedisPublishMany: a batch published in one pipeline reaches each stream's
// subscribers in order, as the same events published one by one would; a batch on a
// closed bus publishes nothing.
func TestRedisPublishMany(t *testing.T) {
	t.Parallel()
	b := bus.NewRedis(newClient(t, redistest.URL(t)), bus.RedisOptions{Prefix: "test:many:" + randomName() + ":", Block: 200 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	many, ok := b.(interface {
		PublishMany(ctx context.Context, evs []plaza.Outgoing) (int, error)
	})
	if !ok {
		t.Fatal("the Redis bus has no PublishMany")
	}
	a, c := subscribe(t, b, "a", ""), subscribe(t, b, "c", "")
	var evs []plaza.Outgoing
	for i := range 6 {
		stream := "a"
		if i%3 == 2 {
			stream = "c"
		}
		evs = append(evs, plaza.Outgoing{Stream: stream, Event: event(t, i)})
	}
	if n, err := many.PublishMany(t.Context(), evs); n != len(evs) || err != nil {
		t.Fatalf("PublishMany = %d, %v; want %d, nil", n, err, len(evs))
	}
	for _, want := range []struct {
		sub bus.Subscription
		ns  []int
	}{{a, []int{0, 1, 3, 4}}, {c, []int{2, 5}}} {
		var got []int
		for _, ev := range receive(t, want.sub, len(want.ns)) {
			got = append(got, n(t, ev))
		}
		if fmt.Sprint(got) != fmt.Sprint(want.ns) {
			t.Errorf("received %v, want %v", got, want.ns)
		}
	}
	b.Close()
	if n, err := many.PublishMany(t.Context(), evs); n != 0 || !errors.Is(err, bus.ErrClosed) {
		t.Errorf("PublishMany on a closed bus = %d, %v; want 0, ErrClosed", n, err)
	}
}
