package app

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/config"
	"plaza/internal/plaza"
	"plaza/internal/redistest"
)

// TestNoEventLostAcrossARedisOutage writes products through the catalog service wired as
// `plaza serve` wires it (outbox relay, Redis bus with the circuit breaker) while its
// Redis is killed for two seconds and restarted. A subscriber on another instance's bus,
// connected throughout, must then get exactly one product.created for every acknowledged
// write, and nothing else.
func TestNoEventLostAcrossARedisOutage(t *testing.T) {
	t.Parallel()
	const hang = time.Minute // a hang guard; reaching it means events were lost
	srv := redistest.Start(t)
	cfg := config.Config{RedisURL: srv.URL(), DataDir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 3*hang)
	defer cancel()
	writer := open(t, ctx, cfg)
	reader := open(t, ctx, cfg)

	sub, err := reader.bus.Subscribe(ctx, plaza.StreamCatalog, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	received := map[string]int{}
	var mu sync.Mutex
	go func() {
		for ev := range sub.Events() {
			var p catalog.Product
			_ = json.Unmarshal(ev.Data, &p)
			mu.Lock()
			received[ev.Type+" "+p.ID]++
			mu.Unlock()
		}
	}()

	relayCtx, stopRelay := context.WithCancel(ctx)
	relayed := make(chan error, 1)
	go func() { relayed <- writer.db.RelayOutbox(relayCtx, writer.bus, writer.log) }()
	defer func() { stopRelay(); <-relayed }()
	svc, err := catalog.New(catalog.Options{Store: writer.db.Products()})
	if err != nil {
		t.Fatal(err)
	}
	admin := plaza.WithPrincipal(ctx, plaza.Principal{UserID: "admin-1", Role: plaza.RoleAdmin})
	var acked []string
	price := int64(500)
	write := func() {
		p, err := svc.Create(admin, catalog.Input{Name: "Outage mug", PriceCents: &price, Category: "home"})
		if err != nil {
			t.Fatalf("write %d: %v", len(acked), err)
		}
		acked = append(acked, catalog.EventCreated+" "+p.ID)
	}

	for range 20 {
		write()
	}
	srv.Kill()
	for outage := time.Now(); time.Since(outage) < 2*time.Second; {
		write()
		time.Sleep(5 * time.Millisecond)
	}
	duringOutage := len(acked) - 20
	srv.Restart()
	for range 20 {
		write()
	}

	deadline := time.Now().Add(hang)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= len(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged writes have an event after %s", n, len(acked), hang)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
	mu.Lock()
	defer mu.Unlock()
	for _, k := range acked {
		if received[k] != 1 {
			t.Errorf("%s delivered %d times, want once", k, received[k])
		}
	}
	if len(received) != len(acked) {
		t.Errorf("%d distinct events for %d acknowledged writes", len(received), len(acked))
	}
	if err := sub.Err(); err != nil {
		t.Errorf("the subscription ended: %v", err)
	}
	t.Logf("%d acknowledged writes (%d during a 2 s Redis outage): each event delivered exactly once", len(acked), duringOutage)
}
