package redisx

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"plaza/internal/prom"
)

// ErrOpen is what a call returns, at once and without touching the network, while the
// breaker is open: Redis failed repeatedly and has not answered a probe since.
var ErrOpen = errors.New("redis: circuit breaker open, Redis is failing; calls fail at once until a probe succeeds")

// BreakerOptions configure NewBreaker. The zero value works.
type BreakerOptions struct {
	// Failures is how many calls in a row must fail to open the breaker (default 5).
	Failures uint32
	// OpenFor is how long the breaker stays open before it lets one call through as a
	// probe (default 250ms). It bounds how late recovery is noticed once Redis is back.
	OpenFor time.Duration
	// Logger receives one line per state change (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, receives the breaker's metrics.
	Registerer prometheus.Registerer
}

// Defaults of BreakerOptions.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 250 * time.Millisecond
)

// Breaker is a circuit breaker for one Redis client, installed as a go-redis hook
// (client.AddHook), so every user of the client (cache, bus, counters, presence) shares it.
// Without it a dead Redis costs every call a dial with retries (hundreds of milliseconds);
// with it, after Failures failures in a row, calls fail in microseconds with ErrOpen, and
// every OpenFor one call probes whether Redis is back.
//
// Only failures of Redis itself count: a reply error (a wrong type, our bug), redis.Nil (a
// miss) and a caller's cancellation do not. A blocking read (XREAD BLOCK) is refused while
// the breaker is open but never serves as its probe: it would hold the one probe slot for
// as long as it blocks.
type Breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	rejected prometheus.Counter
}

// NewBreaker returns a breaker to install with client.AddHook.
func NewBreaker(opts BreakerOptions) *Breaker {
	if opts.Failures == 0 {
		opts.Failures = DefaultBreakerFailures
	}
	if opts.OpenFor <= 0 {
		opts.OpenFor = DefaultBreakerOpenFor
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Breaker{}
	var open prometheus.Gauge
	if opts.Registerer != nil {
		open = prom.Register(opts.Registerer, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plaza_redis_breaker_open", Help: "1 while the Redis circuit breaker is open (calls fail at once), else 0.",
		}))
		b.rejected = prom.Register(opts.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plaza_redis_breaker_rejected_total", Help: "Redis calls failed at once by the open circuit breaker.",
		}))
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		Timeout:     opts.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= opts.Failures },
		IsSuccessful: func(err error) bool {
			return err == nil || errors.Is(err, redis.Nil) || isReply(err)
		},
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, redis.ErrClosed)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			switch to {
			case gobreaker.StateOpen:
				if open != nil {
					open.Set(1)
				}
				if from == gobreaker.StateClosed {
					opts.Logger.Warn("redis: circuit breaker open; Redis calls fail at once until a probe succeeds", "probe_every", opts.OpenFor.String())
				}
			case gobreaker.StateClosed:
				if open != nil {
					open.Set(0)
				}
				opts.Logger.Info("redis: circuit breaker closed; Redis answers again")
			}
		},
	})
	return b
}

// Open reports whether calls are being refused (open, or half-open with its probe out).
func (b *Breaker) Open() bool { return b.cb.State() != gobreaker.StateClosed }

// DialHook leaves dialling alone: the calls that dial are the ones the breaker guards.
func (b *Breaker) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook guards each command.
func (b *Breaker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if handshake(cmd) {
			return next(ctx, cmd)
		}
		if blocking(cmd) {
			if b.cb.State() == gobreaker.StateOpen {
				return b.reject(cmd)
			}
			return next(ctx, cmd)
		}
		done, err := b.cb.Allow()
		if err != nil {
			return b.reject(cmd)
		}
		err = next(ctx, cmd)
		done(err)
		return err
	}
}

// ProcessPipelineHook guards a pipeline (or MULTI/EXEC) as one call.
func (b *Breaker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.IndexFunc(cmds, func(c redis.Cmder) bool { return !handshake(c) }) < 0 {
			return next(ctx, cmds)
		}
		done, err := b.cb.Allow()
		if err != nil {
			for _, cmd := range cmds {
				cmd.SetErr(ErrOpen)
			}
			prom.Inc(b.rejected)
			return ErrOpen
		}
		err = next(ctx, cmds)
		done(err)
		return err
	}
}

func (b *Breaker) reject(cmd redis.Cmder) error {
	prom.Inc(b.rejected)
	cmd.SetErr(ErrOpen)
	return ErrOpen
}

// handshake reports a command go-redis sends on a connection it has just dialled, before
// the caller's command, through the same hooks. Such a command only runs inside a call
// the breaker let through: guarding it again would refuse the half-open probe its own
// connection.
func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "auth", "select", "client", "readonly":
		return true
	}
	return false
}

// blocking reports a command that waits on the server by design (XREAD … BLOCK).
func blocking(cmd redis.Cmder) bool {
	if cmd.Name() != "xread" && cmd.Name() != "xreadgroup" {
		return false
	}
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.EqualFold(s, "block") {
			return true
		}
	}
	return false
}

// isReply reports an error reply of the server: Redis answered, so it is up.
func isReply(err error) bool {
	_, ok := errors.AsType[redis.Error](err)
	return ok
}
