package discovery

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Announcement keeps one instance registered while it is ready.
type Announcement struct {
	reg    Registrar
	id     string
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Announce registers inst with ttl now and renews it every third of ttl while ready
// reports true, until Withdraw. A beat skipped because the instance is not ready (its
// database is down) lets the registration lapse within ttl, so gateways stop sending it
// requests it could not answer; the next ready beat registers it again. The first
// registration's error is returned: an instance that cannot announce itself should say so
// at start rather than serve unseen.
func Announce(ctx context.Context, reg Registrar, inst Instance, ttl time.Duration, ready func(context.Context) bool, log *slog.Logger) (*Announcement, error) {
	if err := reg.Register(ctx, inst, ttl); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &Announcement{reg: reg, id: inst.ID, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		failing := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if !ready(ctx) {
				continue
			}
			beat, cancelBeat := context.WithTimeout(ctx, ttl/3)
			err := reg.Register(beat, inst, ttl)
			cancelBeat()
			switch {
			case err != nil && ctx.Err() == nil && !failing:
				log.Warn("discovery: renewing this instance's registration failed; gateways drop it when the registration lapses", "id", inst.ID, "err", err)
				failing = true
			case err == nil && failing:
				log.Info("discovery: registration renewed again", "id", inst.ID)
				failing = false
			}
		}
	}()
	return a, nil
}

// Settle is how long Withdraw waits, when readers watch the registry, for them to have
// read that the instance left: a gateway that reads the change a moment after the
// instance closed its idle connections would have sent a request into one of them, and a
// POST that met that close cannot be safely resent. Watchers refresh on the change
// notice, a Redis round trip, so this is ample.
const Settle = 250 * time.Millisecond

// Withdraw stops the heartbeats, removes the registration and, if gateways watch the
// registry, gives them Settle to stop choosing this instance: called the moment drain
// begins, before the instance turns unready or closes a listener. Safe to call more than
// once.
func (a *Announcement) Withdraw(ctx context.Context) error {
	var err error
	a.once.Do(func() {
		a.cancel()
		<-a.done
		if err = a.reg.Deregister(ctx, a.id); err != nil {
			return
		}
		if w, ok := a.reg.(interface {
			Watchers(context.Context) (int64, error)
		}); ok {
			if n, werr := w.Watchers(ctx); werr == nil && n > 0 {
				select {
				case <-time.After(Settle):
				case <-ctx.Done():
				}
			}
		}
	})
	return err
}
