package graphql

import (
	"context"
	"encoding/json"

	"plaza/internal/bus"
	"plaza/internal/catalog"
	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// Subscriptions read the event bus, so a change made on any instance through any
// transport reaches subscribers on every instance. Each subscription is one bus
// subscription from now on; one that falls behind its buffer is cut by the bus and
// completes here: the client resubscribes (and refetches what it shows).

type subscriptionResolver struct{ *resolver }

var productChanges = map[string]ProductChangeType{
	catalog.EventCreated: ProductChangeTypeCreated,
	catalog.EventUpdated: ProductChangeTypeUpdated,
	catalog.EventDeleted: ProductChangeTypeDeleted,
}

// ProductChanged is public, like the catalog and its SSE events.
func (r subscriptionResolver) ProductChanged(ctx context.Context, category *string) (<-chan *ProductChange, error) {
	return follow(ctx, r, plaza.StreamCatalog, func(ev plaza.Event) (*ProductChange, bool) {
		typ, ok := productChanges[ev.Type]
		if !ok {
			return nil, false
		}
		var p catalog.Product
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			r.log.WarnContext(ctx, "graphql: undecodable catalog event skipped", "type", ev.Type, "err", err)
			return nil, false
		}
		if category != nil && p.Category != *category {
			return nil, false
		}
		return &ProductChange{Type: typ, Product: &p}, true
	})
}

// MessageAdded follows a room for a signed-in caller: the service's history rules (signed
// in, the room exists) decide who may.
func (r subscriptionResolver) MessageAdded(ctx context.Context, room string) (<-chan *chat.Message, error) {
	if _, err := r.chat.History(ctx, room, plaza.PageRequest{Limit: 1}); err != nil {
		return nil, err
	}
	return follow(ctx, r, chat.Stream(room), decodeAs[chat.Message](chat.EventMessage))
}

func (r subscriptionResolver) Typing(ctx context.Context, room string) (<-chan *chat.Typing, error) {
	if _, err := r.chat.History(ctx, room, plaza.PageRequest{Limit: 1}); err != nil {
		return nil, err
	}
	return follow(ctx, r, chat.Stream(room), decodeAs[chat.Typing](chat.EventTyping))
}

func decodeAs[T any](typ string) func(plaza.Event) (*T, bool) {
	return func(ev plaza.Event) (*T, bool) {
		if ev.Type != typ {
			return nil, false
		}
		v := new(T)
		return v, json.Unmarshal(ev.Data, v) == nil
	}
}

// follow subscribes to stream and sends what pick keeps until ctx ends (the client
// stopped, the socket closed, the server shuts down) or the bus ends the subscription.
func follow[T any](ctx context.Context, r subscriptionResolver, stream string, pick func(plaza.Event) (*T, bool)) (<-chan *T, error) {
	sub, err := r.events.Subscribe(ctx, stream, "")
	if err != nil {
		return nil, plaza.Wrap(plaza.EUnavailable, err, "live updates are unavailable; retry shortly")
	}
	out := make(chan *T)
	go func() {
		defer close(out)
		defer sub.Close()
		for ev := range sub.Events() {
			v, ok := pick(ev)
			if !ok {
				continue
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
		if err := sub.Err(); err != nil {
			r.log.InfoContext(ctx, "graphql subscription cut by the bus", "stream", stream, "err", err, "slow", err == bus.ErrSlowConsumer)
		}
	}()
	return out, nil
}
