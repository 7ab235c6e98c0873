package app

import (
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"time"

	"golang.org/x/sync/errgroup"

	"plaza/internal/cache"
	"plaza/internal/config"
	"plaza/internal/httpapi"
)

// Server timeouts. WriteTimeout bounds ordinary responses; streaming handlers extend their
// own deadlines through http.ResponseController, so it never cuts a live stream.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Serve runs `plaza serve` until ctx is cancelled, then drains: readiness turns 503 while
// the server keeps serving for cfg.DrainDelay, then the listeners close, in-flight requests
// get cfg.ShutdownTimeout to finish, long-lived streams are told to close, and the backends
// close in order. It returns nil on a clean drain.
//
// Whatever can stop start-up without writing anything is checked first, each failure one
// line naming its setting (exit code 2): the admin's credentials, then the HTTP port, then
// the database answering; only then are migrations, keys and demo data written.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := checkAdmin(cfg); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return &config.Error{Var: "PLAZA_HTTP_ADDR", Msg: err.Error()}
	}
	serving := false
	defer func() {
		if !serving {
			ln.Close()
		}
	}()
	d, err := openDeps(ctx, cfg, log)
	if err != nil {
		return err
	}
	// streamsCtx is the one shutdown signal for long-lived streams (WebSocket, SSE, gRPC) and
	// background loops. Every goroutine that uses a backend runs in background, which is
	// joined before the backends close: none may outlive them.
	streamsCtx, stopStreams := context.WithCancel(context.Background())
	var background errgroup.Group
	defer func() {
		stopStreams()
		if err := background.Wait(); err != nil {
			log.Error("background task failed", "err", err)
		}
		if err := d.close(); err != nil {
			log.Error("closing backends", "err", err)
		}
	}()
	for _, c := range []*cache.Cache{d.cache, d.state} {
		background.Go(func() error {
			if err := c.Run(streamsCtx); err != nil {
				return fmt.Errorf("cache invalidation listener: %w", err)
			}
			return nil
		})
	}

	// The outbox relay publishes the events writes stored with their changes; like the
	// listeners it stops with streamsCtx and is joined before the backends close. Events
	// still in the outbox then wait for the next start (or another instance's relay).
	background.Go(func() error { return d.db.RelayOutbox(streamsCtx, d.bus, log) })

	products, err := newCatalog(ctx, cfg, d)
	if err != nil {
		return err
	}
	keys, err := jwtKeys(cfg, log)
	if err != nil {
		return err
	}
	accounts, err := newUsers(cfg, d, keys)
	if err != nil {
		return err
	}
	if err := bootstrapAdmin(ctx, cfg, accounts, log); err != nil {
		return err
	}
	rooms, streams := newRealtime(cfg, d, accounts, streamsCtx)
	gql := newGraphQL(cfg, d, accounts, products, rooms, streams, streamsCtx)
	// Start-up allocates once and never again (the argon2id dummy hash alone is 19 MiB);
	// hand that memory back before serving so an idle instance stays small.
	debug.FreeOSMemory()

	api := httpapi.New(httpapi.Options{
		Logger:         log,
		Registry:       d.registry,
		CORSOrigins:    cfg.CORSOrigins,
		RateLimit:      cfg.RateLimit,
		RateBurst:      cfg.RateBurst,
		TrustedProxies: cfg.TrustedProxies,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Catalog:        products,
		Metrics:        metricsAccess(cfg),
		MetricsBearer:  cfg.MetricsToken,
		Users:          accounts,
		Auth:           accounts,
		Chat:           rooms,
		Streams:        streams,
		GraphQL:        gql,
		Checks: []httpapi.Check{
			{Name: "store", Critical: true, Probe: d.db.Ping},
			{Name: "cache", Probe: d.cache.Check},
			{Name: "bus", Probe: d.bus.Ping},
		},
	})

	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(stopStreams)

	rpc, rpcLn, err := newGRPC(cfg, d, accounts, products, rooms, api.Ready, streamsCtx)
	if err != nil {
		return err
	}
	// Whatever way Serve returns, no gRPC call outlives the backends (a stop or close after
	// a drain is a no-op).
	defer rpc.Close()
	defer rpcLn.Close()
	log.Info("grpc server listening", "addr", rpcLn.Addr().String(), "tls", cfg.GRPCTLSCert != "")
	log.Info("http server listening", "addr", ln.Addr().String(), "env", cfg.Env)

	if cfg.DebugAddr != "" {
		if err := serveDebug(streamsCtx, cfg.DebugAddr, log, &background); err != nil {
			return err
		}
	}
	switch {
	case cfg.MetricsAddr != "":
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{Registry: d.registry}))
		if err := serveSide(streamsCtx, cfg.MetricsAddr, "PLAZA_METRICS_ADDR", "metrics", mux, log, &background); err != nil {
			return err
		}
	case metricsAccess(cfg) == httpapi.MetricsElsewhere:
		log.Warn("metrics are not served: in production set PLAZA_METRICS_ADDR (a listener of their own) or PLAZA_METRICS_TOKEN (a bearer token for /metrics)")
	}

	// Said before the first request is answered: the listener is bound (connections wait
	// in its backlog), and whoever waits for readiness finds these lines already written.
	logStarted(ctx, cfg, d, ln.Addr().String(), log)
	serving = true
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	// Start-up's garbage (migrations, the demo catalog, dictionaries and schemas parsed at
	// init) goes back to the OS now rather than at the scavenger's pace: an idle instance
	// holds what it uses.
	go debug.FreeOSMemory()
	rpcErr := make(chan error, 1)
	go func() { rpcErr <- rpc.Serve(rpcLn) }()
	background.Go(func() error { rpc.WatchReadiness(streamsCtx); return nil })
	registration, err := announce(ctx, cfg, d, ln.Addr(), rpcLn.Addr(), api.Ready, log)
	if err != nil {
		srv.Close()
		return err
	}
	// Leaving the registry happens first thing in the drain, and on any other way out.
	leave := func() {
		if registration == nil {
			return
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer wcancel()
		if err := registration.Withdraw(wctx); err != nil {
			log.Warn("leaving the registry failed; gateways drop this instance when its registration lapses", "err", err)
		}
	}
	defer leave()

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case err := <-rpcErr:
		return fmt.Errorf("grpc server: %w", err)
	case <-ctx.Done():
	}

	// Leave the registry first, so gateways stop choosing this instance before it answers
	// 503 or closes its listeners.
	leave()
	// The drain's phases: readiness fails at once while everything keeps serving (each
	// response closing its connection) for DrainDelay, long enough for load balancers to
	// notice; only then do the listeners close and in-flight work get ShutdownTimeout.
	log.Info("draining", "drain_delay", cfg.DrainDelay.String(), "shutdown_timeout", cfg.ShutdownTimeout.String())
	api.SetDraining()
	rpc.SetDraining()
	if cfg.DrainDelay > 0 {
		select {
		case err := <-serveErr:
			return fmt.Errorf("http server: %w", err)
		case <-time.After(cfg.DrainDelay):
		}
	}
	log.Info("shutting down: listeners closed", "timeout", cfg.ShutdownTimeout.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// gRPC drains alongside HTTP: its streams end (UNAVAILABLE) when Shutdown below stops
	// the streams, and its calls in flight get the same time.
	rpcStopped := make(chan error, 1)
	go func() { rpcStopped <- rpc.Stop(drainCtx) }()
	if err := srv.Shutdown(drainCtx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s; connections were closed: %w", cfg.ShutdownTimeout, err)
	}
	<-serveErr
	if err := <-rpcStopped; err != nil {
		return fmt.Errorf("shutdown: in-flight gRPC calls did not finish within %s; connections were closed: %w", cfg.ShutdownTimeout, err)
	}
	// Shutdown does not wait for hijacked WebSockets: wait here until each has sent its
	// close 1001, so the backends close under no one.
	if err := errors.Join(streams.Wait(drainCtx), gql.Wait(drainCtx)); err != nil {
		return fmt.Errorf("shutdown: streams did not close within %s", cfg.ShutdownTimeout)
	}
	log.Info("shutdown complete")
	return nil
}

// metricsAccess is how the public listener serves /metrics: not at all when they have a
// listener of their own, behind the token when one is set, and in production never openly.
func metricsAccess(cfg config.Config) httpapi.MetricsAccess {
	switch {
	case cfg.MetricsAddr != "":
		return httpapi.MetricsElsewhere
	case cfg.MetricsToken != "":
		return httpapi.MetricsToken
	case cfg.Production():
		return httpapi.MetricsElsewhere
	}
	return httpapi.MetricsPublic
}

// serveDebug serves pprof on its own listener, never on the public one, in g until ctx
// ends.
func serveDebug(ctx context.Context, addr string, log *slog.Logger, g *errgroup.Group) error {
	return serveSide(ctx, addr, "PLAZA_DEBUG_ADDR", "pprof", debugMux(), log, g)
}

// debugMux is the debug listener's: pprof, and POST /debug/free-os-memory, which collects
// garbage and hands every free page back to the OS (debug.FreeOSMemory) before answering
// 204. A collection alone leaves up to the heap goal resident (twice the live heap at
// GOGC=100), so VmRSS read after it moves with the collector's cycle; read after this it is
// what the process holds, which is what a measurement of memory per connection needs.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("POST /debug/free-os-memory", func(w http.ResponseWriter, r *http.Request) {
		debug.FreeOSMemory()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// serveSide serves h on a listener of its own at addr (named by the variable that set it),
// in g until ctx ends.
func serveSide(ctx context.Context, addr, variable, what string, h http.Handler, log *slog.Logger, g *errgroup.Group) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &config.Error{Var: variable, Msg: err.Error()}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	g.Go(func() error {
		defer stop()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s server: %w", what, err)
		}
		return nil
	})
	log.Info(what+" listening", "addr", ln.Addr().String())
	return nil
}
