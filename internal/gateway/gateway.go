// Package gateway is `plaza gateway`: a reverse proxy in front of the instances the
// registry lists. It routes by host, path prefix and method to pools; balances by power
// of two choices (or round robin), with active health checks, passive ejection and a
// circuit breaker per upstream; retries what is safe to retry within a budget; verifies
// tokens and applies rate limits shared by every gateway at the edge; and proxies
// HTTP/1.1, HTTP/2, WebSocket, SSE and gRPC.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"plaza/internal/discovery"
	"plaza/internal/users"
)

// Verifier checks a bearer token at the edge (users.Verifier: the instances' keys and
// revocation list).
type Verifier interface {
	Verify(ctx context.Context, token string) (users.Claims, error)
}

// Options configure New.
type Options struct {
	Config   Config
	Registry discovery.Registry
	Zone     string                // preferred upstream zone ("" none)
	Verifier Verifier              // required
	Redis    redis.UniversalClient // shared rate limits; nil: each gateway counts alone
	Logger   *slog.Logger
	// Registerer takes the gateway's metrics.
	Registerer prometheus.Registerer
	// Metrics serves GET /metrics (the registry Registerer writes to).
	Metrics http.Handler
	// RefreshInterval is how often the registry is read (default 1s); a Watcher registry
	// also triggers a read on every change.
	RefreshInterval time.Duration
}

// Gateway is safe for concurrent use. Serve HTTP with it (ServeHTTP), gRPC with
// GRPCHandler, and run its background work with Run.
type Gateway struct {
	opts      Options
	log       *slog.Logger
	metrics   *metrics
	limiter   *limiter
	budget    budget
	proxy     *httputil.ReverseProxy
	grpc      *httputil.ReverseProxy
	draining  atomic.Bool
	refreshed chan struct{} // closed after the first registry read

	// streamsCtx ends every proxied WebSocket and SSE stream when the gateway drains:
	// their clients reconnect through another gateway, as they do when an instance drains.
	streamsCtx  context.Context
	stopStreams context.CancelFunc
	streams     sync.WaitGroup

	mu    sync.Mutex // serializes Reload and refresh
	state atomic.Pointer[state]

	checkers sync.Map // grpc addr → *grpc.ClientConn for health checks
}

// state is what a config reload swaps at once.
type state struct {
	cfg    Config
	routes []*route
	pools  map[string]*pool
	grpc   *pool
}

type route struct {
	Route
	pool *pool
}

// New builds a gateway over opts.Config (already validated by ParseConfig, or Default).
func New(opts Options) (*Gateway, error) {
	if opts.Verifier == nil || opts.Registry == nil {
		return nil, errors.New("gateway: a Verifier and a Registry are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		reg := prometheus.NewRegistry()
		opts.Registerer, opts.Metrics = reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	if opts.Metrics == nil {
		opts.Metrics = http.NotFoundHandler()
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = time.Second
	}
	g := &Gateway{opts: opts, log: opts.Logger, metrics: newMetrics(opts.Registerer), refreshed: make(chan struct{})}
	g.streamsCtx, g.stopStreams = context.WithCancel(context.Background())
	g.limiter = newLimiter(opts.Redis, g.log, g.metrics.limitLocal, g.metrics.limitFallbacks)
	if opts.Redis == nil {
		g.log.Warn("gateway: no REDIS_URL; rate limits are counted by each gateway alone")
	}
	g.proxy = g.newProxy(newTransport())
	g.grpc = g.newProxy(newGRPCTransport())
	if err := g.apply(opts.Config); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gateway) config() Config { return g.state.Load().cfg }

// Reload applies a new configuration without dropping a connection: requests under way
// finish with the routes they started with, upstreams keep their health and counts. On
// an error the old configuration stays.
func (g *Gateway) Reload(cfg Config) error {
	if err := g.apply(cfg); err != nil {
		g.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	g.metrics.reloads.WithLabelValues("ok").Inc()
	if err := g.refresh(context.Background()); err != nil {
		g.log.Warn("gateway: reading the registry after a reload failed; pools fill at the next read", "err", err)
	}
	return nil
}

func (g *Gateway) apply(cfg Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.state.Load()
	st := &state{cfg: cfg, pools: map[string]*pool{}}
	reuse := func(name, balancer string) *pool {
		if balancer == "" {
			balancer = cfg.Balancer
		}
		var p *pool
		if old != nil {
			if name == grpcPoolName {
				p = old.grpc
			} else {
				p = old.pools[name]
			}
		}
		if p == nil {
			p = &pool{name: name, zone: g.opts.Zone}
			p.onState = func(u *upstream, from, to gobreaker.State) { g.breakerChanged(p, u, from, to) }
		}
		p.mu.Lock()
		p.balancer, p.outlier, p.breaker = balancer, cfg.Outlier, cfg.Breaker
		p.mu.Unlock()
		return p
	}
	for name, pc := range cfg.Pools {
		st.pools[name] = reuse(name, pc.Balancer)
	}
	st.grpc = reuse(grpcPoolName, cfg.GRPC.Balancer)
	for _, r := range cfg.Routes {
		p, ok := st.pools[r.Pool]
		if !ok {
			return fmt.Errorf("gateway: route %s names no pool %q", r.Name, r.Pool)
		}
		st.routes = append(st.routes, &route{Route: r, pool: p})
	}
	g.budget.set(cfg.Retry.Budget, cfg.Retry.MinPerSecond)
	g.state.Store(st)
	return nil
}

const grpcPoolName = "grpc"

// match returns the first route for the request, or nil.
func (st *state) match(r *http.Request) *route {
	host := r.Host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	for _, rt := range st.routes {
		if rt.Host != "" && !strings.EqualFold(rt.Host, host) {
			continue
		}
		if !strings.HasPrefix(r.URL.Path, rt.PathPrefix) {
			continue
		}
		if len(rt.Methods) > 0 && !contains(rt.Methods, r.Method) {
			continue
		}
		return rt
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// SetDraining turns /readyz to 503, so whatever balances gateways stops sending here.
func (g *Gateway) SetDraining() { g.draining.Store(true) }

// EndStreams ends every proxied WebSocket and SSE stream, now and from now on: called
// when the drain starts, because http.Server.Shutdown does not wait for hijacked
// connections and would wait for an event stream as long as it lasts.
func (g *Gateway) EndStreams() { g.stopStreams() }

// WaitStreams waits, until ctx ends, for the handlers of ended streams to return. Call it
// after the servers' Shutdown, when no new request can start one.
func (g *Gateway) WaitStreams(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.streams.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready reports whether the gateway can route: not draining, the registry read at least
// once, and some upstream available.
func (g *Gateway) Ready() bool {
	if g.draining.Load() {
		return false
	}
	select {
	case <-g.refreshed:
	default:
		return false
	}
	now := time.Now()
	for _, p := range g.state.Load().pools {
		for _, u := range p.snapshot() {
			if u.available(now) {
				return true
			}
		}
	}
	return false
}

// Run reads the registry and checks the upstreams' health until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer g.closeCheckers()
	var changes <-chan struct{}
	if w, ok := g.opts.Registry.(discovery.Watcher); ok {
		changes = w.Watch(ctx)
	}
	if err := g.refresh(ctx); err != nil {
		g.log.Warn("gateway: reading the registry failed", "err", err)
	}
	close(g.refreshed)
	wg.Go(func() { g.checkLoop(ctx) })
	tick := time.NewTicker(g.opts.RefreshInterval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		}
		err := g.refresh(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			g.log.Warn("gateway: reading the registry failed; routing to the instances known before", "err", err)
			failing = true
		case err == nil && failing:
			g.log.Info("gateway: reading the registry works again")
			failing = false
		}
	}
}

// refresh makes every pool hold the registry's instances (or its static addresses).
func (g *Gateway) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	is, err := g.opts.Registry.Instances(ctx)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.state.Load()
	web := make([]member, 0, len(is))
	rpc := make([]member, 0, len(is))
	for _, in := range is {
		web = append(web, member{id: in.ID, addr: in.HTTPAddr, zone: in.Zone})
		if in.GRPCAddr != "" {
			rpc = append(rpc, member{id: in.ID, addr: in.GRPCAddr, zone: in.Zone})
		}
	}
	for name, p := range st.pools {
		want := web
		if static := st.cfg.Pools[name].Static; len(static) > 0 {
			want = want[:0:0]
			for _, a := range static {
				want = append(want, member{id: a, addr: a})
			}
		}
		g.syncPool(p, want)
	}
	g.syncPool(st.grpc, rpc)
	return nil
}

func (g *Gateway) syncPool(p *pool, want []member) {
	added, removed := p.sync(want)
	for _, u := range added {
		g.metrics.available.WithLabelValues(p.name, u.addr).Set(1)
		g.log.Info("gateway: upstream joined", "pool", p.name, "id", u.id, "addr", u.addr, "zone", u.zone)
	}
	for _, u := range removed {
		g.metrics.available.DeleteLabelValues(p.name, u.addr)
		g.log.Info("gateway: upstream left the registry", "pool", p.name, "id", u.id, "addr", u.addr)
		if p.name == grpcPoolName {
			if c, ok := g.checkers.LoadAndDelete(u.addr); ok {
				c.(*grpc.ClientConn).Close()
			}
		}
	}
}

// checkLoop runs the active health checks every interval.
func (g *Gateway) checkLoop(ctx context.Context) {
	client := &http.Client{Transport: newTransport()}
	defer client.CloseIdleConnections()
	for {
		cfg := g.config()
		t := time.NewTimer(cfg.Health.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		st := g.state.Load()
		var wg sync.WaitGroup
		for _, p := range st.pools {
			for _, u := range p.snapshot() {
				wg.Go(func() { g.recordCheck(p, u, g.checkHTTP(ctx, client, u, cfg.Health.Timeout)) })
			}
		}
		for _, u := range st.grpc.snapshot() {
			wg.Go(func() { g.recordCheck(st.grpc, u, g.checkGRPC(ctx, u, cfg.Health.Timeout)) })
		}
		wg.Wait()
	}
}

func (g *Gateway) checkHTTP(ctx context.Context, client *http.Client, u *upstream, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+u.addr+"/readyz", nil)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	// Read to the end, so the connection is kept for the next check: closed unread, it is
	// closed, and every check dialled anew (two a second per upstream, each left in TIME-WAIT).
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz answered %d", res.StatusCode)
	}
	return nil
}

func (g *Gateway) checkGRPC(ctx context.Context, u *upstream, timeout time.Duration) error {
	c, ok := g.checkers.Load(u.addr)
	if !ok {
		conn, err := grpc.NewClient(u.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		if c, ok = g.checkers.LoadOrStore(u.addr, conn); ok {
			conn.Close()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := healthpb.NewHealthClient(c.(*grpc.ClientConn)).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if res.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health is %s", res.Status)
	}
	return nil
}

func (g *Gateway) closeCheckers() {
	g.checkers.Range(func(k, c any) bool {
		c.(*grpc.ClientConn).Close()
		g.checkers.Delete(k)
		return true
	})
}

// recordCheck applies a check's result with the configured thresholds.
func (g *Gateway) recordCheck(p *pool, u *upstream, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h := g.config().Health
	u.mu.Lock()
	if err == nil {
		u.checkFails, u.checkPasses = 0, u.checkPasses+1
	} else {
		u.checkFails, u.checkPasses = u.checkFails+1, 0
	}
	down := err != nil && u.checkFails >= h.UnhealthyAfter && u.healthy.Load()
	up := err == nil && u.checkPasses >= h.HealthyAfter && !u.healthy.Load()
	u.mu.Unlock()
	switch {
	case down:
		u.healthy.Store(false)
		g.log.Warn("gateway: upstream failed its health checks; no longer chosen", "pool", p.name, "addr", u.addr, "err", err)
	case up:
		u.healthy.Store(true)
		g.log.Info("gateway: upstream passes its health checks again", "pool", p.name, "addr", u.addr)
	}
	g.setAvailable(p, u)
}

func (g *Gateway) setAvailable(p *pool, u *upstream) {
	v := 0.0
	if u.available(time.Now()) {
		v = 1
	}
	// Only for members still in the pool: a removed one's series is gone for good.
	for _, m := range p.snapshot() {
		if m == u {
			g.metrics.available.WithLabelValues(p.name, u.addr).Set(v)
		}
	}
}

func (g *Gateway) upstreamFailed(p *pool, u *upstream, outcome string) {
	g.metrics.upstream.WithLabelValues(p.name, u.addr, outcome).Inc()
	if d, ejected := p.failed(u); ejected {
		g.metrics.ejections.WithLabelValues(p.name, u.addr).Inc()
		g.metrics.available.WithLabelValues(p.name, u.addr).Set(0)
		g.log.Warn("gateway: upstream ejected after consecutive failures", "pool", p.name, "addr", u.addr, "for", d.String())
		time.AfterFunc(d, func() { g.setAvailable(p, u) })
	}
}

func (g *Gateway) upstreamSucceeded(p *pool, u *upstream) {
	g.metrics.upstream.WithLabelValues(p.name, u.addr, "ok").Inc()
	p.succeeded(u)
}

// breakerChanged runs under the breaker's lock: it must not ask the breaker anything.
func (g *Gateway) breakerChanged(p *pool, u *upstream, from, to gobreaker.State) {
	g.log.Warn("gateway: circuit breaker changed state", "pool", p.name, "addr", u.addr, "from", from.String(), "to", to.String())
	if to == gobreaker.StateOpen {
		g.metrics.available.WithLabelValues(p.name, u.addr).Set(0)
	}
}
