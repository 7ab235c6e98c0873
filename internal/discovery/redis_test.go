package discovery_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"plaza/internal/discovery"
	"plaza/internal/redistest"
)

func newRedis(t *testing.T) *discovery.Redis {
	client := redistest.Client(t, redistest.URL(t))
	return discovery.NewRedis(client, "test:discovery:"+strconv.FormatInt(time.Now().UnixNano(), 36)+":", slog.New(slog.DiscardHandler))
}

// TestRedisRegistrationLapses: an instance that stops renewing (it died) drops out once
// its TTL has passed, with no one deregistering it.
func TestRedisRegistrationLapses(t *testing.T) {
	t.Parallel()
	r := newRedis(t)
	inst := discovery.Instance{ID: "dead", HTTPAddr: "127.0.0.1:1"}
	if err := r.Register(t.Context(), inst, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(t.Context(), discovery.Instance{ID: "alive", HTTPAddr: "127.0.0.1:2"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "dead lapsed", discovery.Instance{ID: "alive", HTTPAddr: "127.0.0.1:2"})
}

// TestAnnounceRenewsWhileReadyAndWithdraws: heartbeats keep an instance registered past
// its TTL while it is ready; not ready, it lapses; Withdraw removes it at once and tells
// watchers.
func TestAnnounceRenewsWhileReadyAndWithdraws(t *testing.T) {
	t.Parallel()
	r := newRedis(t)
	ctx := t.Context()
	changes := r.Watch(ctx)
	inst := discovery.Instance{ID: "a", HTTPAddr: "127.0.0.1:1", Zone: "z1", Version: "v1", StartedAt: time.Now().UTC().Truncate(time.Second)}
	ready := make(chan bool, 1)
	ready <- true
	isReady := func(context.Context) bool { v := <-ready; ready <- v; return v }
	a, err := discovery.Announce(ctx, r, inst, time.Second, isReady, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("no change announced for a new instance")
	}
	// Two TTLs later it is still there: the beats renewed it.
	time.Sleep(2 * time.Second)
	got, err := r.Instances(ctx)
	if err != nil || len(got) != 1 || got[0].Zone != "z1" || got[0].Version != "v1" || !got[0].StartedAt.Equal(inst.StartedAt) || got[0].ExpiresAt.IsZero() {
		t.Fatalf("after two TTLs of heartbeats: %+v %v", got, err)
	}
	<-ready
	ready <- false
	waitFor(t, r, "not ready: lapsed")
	<-ready
	ready <- true
	waitFor(t, r, "ready again", inst)
	if err := a.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = r.Instances(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("after Withdraw: %+v %v", got, err)
	}
}

func TestOpenSpecs(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"redis", "static:127.0.0.1:8080=127.0.0.1:50051,127.0.0.1:8081", "dns://plaza.default.svc:8080?grpc=50051&interval=2s", "dns+srv://plaza.default.svc"} {
		if err := discovery.CheckSpec(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "etcd://x", "static:", "static:nohost", "dns://plaza", "dns://plaza:8080?interval=soon", "dns://plaza:8080?grpc=x"} {
		if err := discovery.CheckSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
