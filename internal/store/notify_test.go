package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// TestNotificationsReachListenersAndEndWithTheirConnection: on PostgreSQL a Notify from one
// process reaches a Listen on another connection (quoted channel names included); cutting
// the listener's connection from the server ends Listen with an error at once; SQLite
// has no notifications (one process, nobody to tell).
func TestNotificationsReachListenersAndEndWithTheirConnection(t *testing.T) {
	t.Parallel()
	if storetest.Open(t, store.SQLite).Notifications("x") != nil {
		t.Fatal("SQLite offers notifications")
	}
	url := storetest.PostgresURL(t)
	open := func() *store.DB {
		db, err := store.Open(t.Context(), store.Config{DatabaseURL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	sender, listener := open(), open()
	const channel = "Test Channel"
	listening, got, ended := make(chan struct{}), make(chan string, 10), make(chan error, 1)
	go func() {
		ended <- listener.Notifications(channel).Listen(t.Context(), func() { close(listening) }, func(p string) { got <- p })
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("Listen never listened")
	}
	payload := `["product:1"]` + strings.Repeat(" ", 7000)
	if err := sender.Notifications(channel).Notify(t.Context(), payload); err != nil {
		t.Fatal(err)
	}
	if err := sender.Notifications("another").Notify(t.Context(), "not for us"); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != payload {
			t.Fatalf("received %.40q…, want %.40q…", p, payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the notification never arrived")
	}
	// Idle past a heartbeat, the listener still listens.
	time.Sleep(1200 * time.Millisecond)
	if err := sender.Notifications(channel).Notify(t.Context(), "after a while"); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != "after a while" {
		t.Fatalf("received %q after idling", p)
	}

	cut := time.Now()
	if n := storetest.CutListeners(t, url); n != 1 {
		t.Fatalf("cut %d listeners, want 1", n)
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("Listen ended without an error when its connection was cut")
		}
		t.Logf("Listen ended %s after its connection was cut: %v", time.Since(cut).Round(time.Microsecond), err)
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not notice its connection was cut")
	}

	ctx, cancel := context.WithCancel(t.Context())
	go func() { ended <- listener.Notifications(channel).Listen(ctx, func() { cancel() }, func(string) {}) }()
	if err := <-ended; err != nil {
		t.Fatalf("Listen = %v after its context ended, want nil", err)
	}
	if len(got) > 0 {
		t.Fatalf("received %q from another channel", <-got)
	}
}
