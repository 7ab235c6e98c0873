// Package bus carries domain events between the services that publish them and the
// subscribers that stream them to clients (SSE, WebSocket, GraphQL subscriptions, gRPC
// streams, cache invalidation).
//
// Two implementations share one contract: memory (one process) and redis (Redis Streams,
// fan-out across instances). Every event gets a position in its stream, "<ms>-<seq>" in
// both, so a subscriber that lost its connection can resume after the last ID it saw.
//
// Slow subscribers are cut off, never waited for: each subscription has a bounded buffer
// and when it is full the subscription ends with ErrSlowConsumer. The client is expected
// to resubscribe after the last event it handled.
package bus

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"plaza/internal/plaza"
	"plaza/internal/prom"
)

// Bus publishes events to streams and delivers them to subscribers.
type Bus interface {
	// Publish assigns ev.ID (a position ordered within the stream, "<ms>-<seq>" like a
	// Redis stream ID) and delivers ev to every subscriber of stream on every instance.
	// It returns ev with its ID set.
	Publish(ctx context.Context, stream string, ev plaza.Event) (plaza.Event, error)
	// Subscribe delivers events of stream published after position after: "" means only
	// events published from now on; a position replays the retained events after it, then
	// continues live, in order and without duplicates across the boundary. A malformed
	// position is a plaza.EBadRequest error. The subscription ends when ctx is done, when
	// it is closed, when the bus is closed, or when it falls behind (ErrSlowConsumer).
	Subscribe(ctx context.Context, stream string, after string) (Subscription, error)
	// Ping reports whether the bus can publish (for health checks).
	Ping(ctx context.Context) error
	// Close ends every subscription and makes later calls fail with ErrClosed.
	Close() error
}

// Subscription is one subscriber's view of a stream.
type Subscription interface {
	// Events delivers the stream's events; it is closed when the subscription ends.
	Events() <-chan plaza.Event
	// Err tells why the subscription ended: nil after Close, ctx cancellation or the
	// bus closing; ErrSlowConsumer when it fell behind. It is nil while it runs.
	Err() error
	// Close ends the subscription. It is safe to call more than once and concurrently.
	Close()
}

// Synced is implemented by subscriptions that can lose touch with their stream without
// ending: the Redis bus's shared reader keeps retrying while Redis is down, and resumes
// where it stopped. Synced reports whether the subscription is caught up: false from a
// failed read until a read has reached the end of the stream again. epoch grows by one
// each time it becomes caught up again, so a holder of state kept coherent by the stream
// (a cache's local tier) can tell that it may have missed events in between. A
// subscription that does not implement Synced is always caught up (the memory bus).
type Synced interface {
	Synced() (ok bool, epoch uint64)
}

var (
	// ErrSlowConsumer ends a subscription whose buffer filled up: the subscriber did not
	// keep up and events were dropped for it. Resubscribe after the last event handled.
	ErrSlowConsumer = errors.New("bus: subscriber too slow, events were dropped")
	// ErrClosed is returned by Publish and Subscribe after the bus was closed.
	ErrClosed = errors.New("bus: closed")
	// ErrTrimmed is returned by Subscribe when events after the position asked for are no
	// longer retained: resuming there would leave a silent gap. Start over from "".
	ErrTrimmed = errors.New("bus: events after this position are no longer retained")
)

// Defaults shared by both implementations. DefaultRetain is what SSE clients can resume
// across (issue 13 asks for at least 10,000 events per stream).
const (
	DefaultRetain     = 10_000
	DefaultBufferSize = 256
)

// DedupeWindow is how many recent event keys each stream remembers per instance: an event
// published again with a Key among them (an outbox relay repeating a publish whose
// outcome it did not learn) is not delivered again.
const DedupeWindow = 1024

// seen holds the last DedupeWindow keys of a stream. The zero value is ready.
type seen struct {
	keys map[string]struct{}
	ring []string
	next int
}

// add records key and reports whether it was seen already. Events without a key (never
// written to an outbox) are never duplicates.
func (s *seen) add(key string) (dup bool) {
	if key == "" {
		return false
	}
	if _, ok := s.keys[key]; ok {
		return true
	}
	if s.keys == nil {
		s.keys = make(map[string]struct{}, DedupeWindow)
	}
	if len(s.ring) < DedupeWindow {
		s.ring = append(s.ring, key)
	} else {
		delete(s.keys, s.ring[s.next])
		s.ring[s.next] = key
		s.next = (s.next + 1) % DedupeWindow
	}
	s.keys[key] = struct{}{}
	return false
}

// position is a stream position, the parsed form of an event ID "<ms>-<seq>".
type position struct{ ms, seq uint64 }

func (p position) String() string {
	return strconv.FormatUint(p.ms, 10) + "-" + strconv.FormatUint(p.seq, 10)
}

func (p position) less(q position) bool { return p.ms < q.ms || (p.ms == q.ms && p.seq < q.seq) }

// parsePosition parses an ID given by a client (a Last-Event-ID, a resume cursor).
func parsePosition(s string) (position, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if ok {
		p := position{}
		var err1, err2 error
		p.ms, err1 = strconv.ParseUint(ms, 10, 64)
		p.seq, err2 = strconv.ParseUint(seq, 10, 64)
		if err1 == nil && err2 == nil {
			return p, nil
		}
	}
	return position{}, plaza.Errorf(plaza.EBadRequest, "invalid stream position %q: want <ms>-<seq>", s)
}

// metrics counts what the bus does. The zero value (nil counters) counts nothing.
type metrics struct {
	published prometheus.Counter
	delivered prometheus.Counter
	slow      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, backend string) metrics {
	if reg == nil {
		return metrics{}
	}
	labels := prometheus.Labels{"backend": backend}
	return metrics{
		published: prom.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plaza_bus_published_total", Help: "Events published to the bus.", ConstLabels: labels,
		})),
		delivered: prom.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plaza_bus_delivered_total", Help: "Events handed to subscribers.", ConstLabels: labels,
		})),
		slow: prom.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plaza_bus_slow_subscribers_total", Help: "Subscriptions cut off because they fell behind.", ConstLabels: labels,
		})),
	}
}
