package app

import (
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
	streamsCtx, stopStreams := context.WithCancel(context.Background())
	defer stopStreams()
	for _, c := range []*cache.Cache{d.cache, d.state} {
		go func() {
			if err := c.Run(streamsCtx); err != nil {
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
	rooms, streams := newRealtime(cfg, d, accounts, streamsCtx)
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
		Users:          accounts,
		Auth:           accounts,
		Chat:           rooms,
		Streams:        streams,
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
	// Shutdown does not wait for hijacked WebSockets: wait here until each has sent its
	// close 1001, so the backends close under no one.
	if err := streams.Wait(drainCtx); err != nil {
		return fmt.Errorf("shutdown: streams did not close within %s", cfg.ShutdownTimeout)
	}
	log.Info("shutdown complete")
	return nil
}

// serveDebug serves pprof on its own listener, never on the public one.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &config.Error{Var: "PLAZA_DEBUG_ADDR", Msg: err.Error()}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug server", "err", err)
		}
	}()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
