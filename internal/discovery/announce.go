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

// Withdraw stops the heartbeats and removes the registration: called the moment drain
// begins, so gateways stop choosing this instance before its listeners close. Safe to
// call more than once.
func (a *Announcement) Withdraw(ctx context.Context) error {
	var err error
	a.once.Do(func() {
		a.cancel()
		<-a.done
		err = a.reg.Deregister(ctx, a.id)
	})
	return err
}
