package realtime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"plaza/internal/plaza"
)

// TicketTTL is how long a WebSocket/SSE ticket may wait before it is used.
const TicketTTL = 30 * time.Second

// Cache is what tickets need from the shared cache (cache.Cache implements it): with
// Redis every instance sees a ticket, and Incr is atomic across them, so a ticket is
// spent exactly once whichever instance it is presented to.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
}

// Ticket is a one-time credential for opening a stream from a browser, which cannot set
// an Authorization header on a WebSocket or EventSource: the long-lived token never goes
// into a URL, only this, valid once and for TicketTTL.
type Ticket struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"` // seconds
}

// tickets issues and redeems tickets in the cache. Keys hold the ticket's SHA-256, not
// the ticket, so whoever can read the cache cannot use one.
type tickets struct{ cache Cache }

func ticketKey(t string) string {
	sum := sha256.Sum256([]byte(t))
	return "ws:ticket:" + hex.EncodeToString(sum[:])
}

// issue returns a ticket for the caller.
func (ts tickets) issue(ctx context.Context) (Ticket, error) {
	p, ok := plaza.PrincipalFrom(ctx)
	if !ok {
		return Ticket{}, plaza.Errorf(plaza.EUnauthenticated, "sign in first: a ticket is issued for a Bearer access token")
	}
	val, err := json.Marshal(p)
	if err != nil {
		return Ticket{}, plaza.Wrap(plaza.EInternal, err, "internal error")
	}
	t := rand.Text()
	if err := ts.cache.Set(ctx, ticketKey(t), val, TicketTTL); err != nil {
		return Ticket{}, plaza.Wrap(plaza.EUnavailable, err, "tickets are unavailable; retry later")
	}
	return Ticket{Ticket: t, ExpiresIn: int(TicketTTL / time.Second)}, nil
}

var errBadTicket = plaza.Errorf(plaza.EUnauthenticated, "the ticket is unknown, expired or used already; get a new one")

// redeem spends a ticket and returns the principal it was issued to. The spend counter is
// incremented before the ticket is read: of two presenters, on any instances, exactly one
// sees 1.
func (ts tickets) redeem(ctx context.Context, t string) (plaza.Principal, error) {
	if t == "" || len(t) > 64 {
		return plaza.Principal{}, errBadTicket
	}
	key := ticketKey(t)
	n, err := ts.cache.Incr(ctx, key+":spent", TicketTTL)
	if err != nil {
		return plaza.Principal{}, plaza.Wrap(plaza.EUnavailable, err, "tickets are unavailable; retry later")
	}
	if n != 1 {
		return plaza.Principal{}, errBadTicket
	}
	val, ok := ts.cache.Get(ctx, key)
	var p plaza.Principal
	if !ok || json.Unmarshal(val, &p) != nil || p.UserID == "" {
		return plaza.Principal{}, errBadTicket
	}
	return p, nil
}
