package gateway

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"plaza/internal/discovery"
	"plaza/internal/users"
)

type refuseTokens struct{}

func (refuseTokens) Verify(context.Context, string) (users.Claims, error) {
	return users.Claims{}, errors.New("no tokens in this test")
}

// proxyTo runs a gateway with the default routes in front of upstream alone and returns
// its address once it is ready.
func proxyTo(t *testing.T, upstream *httptest.Server) string {
	return proxyWith(t, upstream, Default(Limit{Rate: 1000, Burst: 1000}))
}

func proxyWith(t *testing.T, upstream *httptest.Server, cfg Config) string {
	t.Helper()
	addr := strings.TrimPrefix(upstream.URL, "http://")
	g, err := New(Options{
		Config:   cfg,
		Registry: discovery.NewStatic([]discovery.Instance{{ID: "a", HTTPAddr: addr}}),
		Verifier: refuseTokens{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	for deadline := time.Now().Add(10 * time.Second); !g.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the gateway never became ready")
		}
	}
	return srv.URL
}

// slowUpstream answers /api/slow only when the request ends, anything else at once.
func slowUpstream(t *testing.T) *httptest.Server {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/slow" {
			<-r.Context().Done()
			return
		}
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(upstream.Close)
	return upstream
}

// TestClientsGoingAwayDoNotOpenTheBreaker: requests the client abandons say nothing about
// the instance. Many of them in a row (a load generator stopping with requests in flight)
// must leave the next request served, not refused with 503 by an open breaker.
func TestClientsGoingAwayDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	upstream := slowUpstream(t)
	base := proxyTo(t, upstream)

	n := 3 * Default(Limit{}).Breaker.ConsecutiveFailures
	for range n {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/slow", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			t.Fatalf("the slow request was answered %d before the client gave up", res.StatusCode)
		}
		cancel()
	}
	res, err := http.Get(base + "/api/products")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("after %d abandoned requests the next was answered %d, want 200", n, res.StatusCode)
	}
}

// TestAnswersCarryEachFieldOnce: the instance echoes the request ID the gateway sent and
// sets its own RateLimit-* fields; the client reads the gateway's, once each.
func TestAnswersCarryEachFieldOnce(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		w.Header().Set("RateLimit-Limit", "7")
		w.Header().Set("RateLimit-Remaining", "6")
		w.Header().Set("RateLimit-Reset", "1")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(upstream.Close)
	base := proxyTo(t, upstream)

	req, _ := http.NewRequest(http.MethodGet, base+"/api/products", nil)
	req.Header.Set("X-Request-Id", "req-1234")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, f := range append([]string{"X-Request-Id"}, rateLimitFields...) {
		if got := res.Header.Values(f); len(got) != 1 {
			t.Errorf("%s = %q, want one value", f, got)
		}
	}
	if got := res.Header.Get("X-Request-Id"); got != "req-1234" {
		t.Errorf("X-Request-Id = %q, want the client's req-1234", got)
	}
	if got := res.Header.Get("RateLimit-Limit"); got != "1000" {
		t.Errorf("RateLimit-Limit = %q, want the gateway's 1000", got)
	}
}

// TestRouteTimeoutsCountAgainstTheInstance: unlike a client leaving, an instance too slow
// for the route's timeout failed the exchange: after the breaker's run of them, requests
// are refused at once (503) instead of each waiting out the timeout.
func TestRouteTimeoutsCountAgainstTheInstance(t *testing.T) {
	t.Parallel()
	upstream := slowUpstream(t)
	cfg := Default(Limit{Rate: 1000, Burst: 1000})
	cfg.Routes[0].Timeout = 50 * time.Millisecond
	cfg.Retry.Attempts = 1
	base := proxyWith(t, upstream, cfg)

	statuses := map[int]int{}
	for range 2 * cfg.Breaker.ConsecutiveFailures {
		res, err := http.Get(base + "/api/slow")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		statuses[res.StatusCode]++
	}
	if statuses[http.StatusGatewayTimeout] == 0 || statuses[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("slow answers past the route's timeout gave %v; want 504s, then 503s once the breaker opened", statuses)
	}
}

// TestStreamsAreNotBuffered: what an instance flushes of an answer without a known end (an
// event stream, a chunked answer, with or without an Accept that says so) reaches the
// client while the instance is still writing, not when it is done.
func TestStreamsAreNotBuffered(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/events" {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		w.Write([]byte("first\n"))
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // the rest never comes
	}))
	t.Cleanup(upstream.Close)
	base := proxyTo(t, upstream)

	for _, tc := range []struct{ path, accept string }{
		{"/api/events", "text/event-stream"},
		{"/api/events", ""},
		{"/api/chunked", ""},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("%s (Accept %q): %v", tc.path, tc.accept, err)
		}
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		res.Body.Close()
		cancel()
		if line != "first\n" {
			t.Errorf("%s (Accept %q): read %q, %v; want the first line while the instance still writes", tc.path, tc.accept, line, err)
		}
	}
}
