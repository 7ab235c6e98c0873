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

// Serve runs `plaza serve` until ctx is cancelled, then drains: readiness turns 503, the
// listeners close, in-flight requests get cfg.ShutdownTimeout to finish, long-lived streams
// are told to close, and the backends close in order. It returns nil on a clean drain.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	d, err := openDeps(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := d.close(); err != nil {
			log.Error("closing backends", "err", err)
		}
	}()

	// streams is the one shutdown signal for long-lived streams (WebSocket, SSE, gRPC).
	streams, stopStreams := context.WithCancel(context.Background())
	defer stopStreams()
	for _, c := range []*cache.Cache{d.cache, d.state} {
		go func() {
			if err := c.Run(streams); err != nil {
				log.Error("cache invalidation listener stopped", "err", err)
			}
		}()
	}

	products, err := newCatalog(ctx, cfg, d)
	if err != nil {
		return err
	}
	keys, err := jwtKeys(cfg, log)
	if err != nil {
		return err
	}
	accounts, err := newUsers(d, keys)
	if err != nil {
		return err
	}
	if err := bootstrapAdmin(ctx, cfg, accounts, log); err != nil {
		return err
	}
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

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return &config.Error{Var: "PLAZA_HTTP_ADDR", Msg: err.Error()}
	}
	log.Info("http server listening", "addr", ln.Addr().String(), "env", cfg.Env)

	if cfg.DebugAddr != "" {
		stop, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	switch {
	case cfg.MetricsAddr != "":
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{Registry: d.registry}))
		stop, err := serveSide(cfg.MetricsAddr, "PLAZA_METRICS_ADDR", "metrics", mux, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	case metricsAccess(cfg) == httpapi.MetricsElsewhere:
		log.Warn("metrics are not served: in production set PLAZA_METRICS_ADDR (a listener of their own) or PLAZA_METRICS_TOKEN (a bearer token for /metrics)")
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	api.SetDraining()
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s; connections were closed", cfg.ShutdownTimeout)
	}
	<-serveErr
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

// serveDebug serves pprof on its own listener, never on the public one.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveSide(addr, "PLAZA_DEBUG_ADDR", "pprof", mux, log)
}

// serveSide serves h on a listener of its own at addr (named by the variable that set it).
func serveSide(addr, variable, what string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &config.Error{Var: variable, Msg: err.Error()}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" server", "err", err)
		}
	}()
	log.Info(what+" listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
