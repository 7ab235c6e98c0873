package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"plaza/internal/cache"
	"plaza/internal/config"
	"plaza/internal/discovery"
	"plaza/internal/gateway"
	"plaza/internal/redisx"
	"plaza/internal/users"
)

// Gateway runs `plaza gateway` until ctx ends, then drains like Serve: readiness turns
// 503, streams end, in-flight requests get cfg.ShutdownTimeout. configFile ("" for the
// zero-config default) is read at start and again on every value of reload; a bad file at
// start stops it, a bad reload keeps the running configuration.
func Gateway(ctx context.Context, cfg config.Config, configFile string, reload <-chan struct{}, log *slog.Logger) error {
	base := gateway.Default(gateway.Limit{Rate: cfg.RateLimit, Burst: cfg.RateBurst})
	gcfg, err := loadGatewayConfig(configFile, base)
	if err != nil {
		return err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var client *redis.Client
	if cfg.RedisURL != "" {
		opts, err := cache.ParseRedisURL(cfg.RedisURL)
		if err != nil {
			return &config.Error{Var: "REDIS_URL", Msg: err.Error()}
		}
		redisx.RouteLogs(log)
		client = redis.NewClient(opts)
		// As on the instances: a dead Redis costs each limit and revocation check
		// microseconds while the breaker is open, not a dial with retries.
		client.AddHook(redisx.NewBreaker(redisx.BreakerOptions{Logger: log, Registerer: registry}))
		defer client.Close()
	}
	reg, err := openRegistry(cfg, client, log)
	if err != nil {
		return err
	}
	keys, err := jwtKeys(cfg, log)
	if err != nil {
		return err
	}
	// The instances' security state, read where they write it: revocations from any
	// instance are refused here at once. Without Redis there is none to read, so the edge
	// checks signatures and claims only (the instances still check the rest).
	var state users.StateReader
	if client != nil {
		c := cache.New(cache.NewRedis(client, "plaza:state:"), cache.Options{Logger: log})
		defer c.Close()
		state = c
	} else {
		state = cache.New(cache.NewMemory(1), cache.Options{Logger: log})
		log.Warn("gateway: no REDIS_URL; tokens are verified at the edge without the revocation list")
	}
	verifier, err := users.NewVerifier(keys, state, nil)
	if err != nil {
		return err
	}
	var shared redis.UniversalClient // stays a nil interface without Redis
	if client != nil {
		shared = client
	}
	g, err := gateway.New(gateway.Options{Config: gcfg, Registry: reg, Zone: cfg.Discovery.Zone, Verifier: verifier, Redis: shared,
		Logger: log, Registerer: registry, Metrics: promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry})})
	if err != nil {
		return err
	}

	httpLn, err := net.Listen("tcp", cfg.Gateway.HTTPAddr)
	if err != nil {
		return &config.Error{Var: "PLAZA_GATEWAY_ADDR", Msg: err.Error()}
	}
	defer httpLn.Close()
	grpcLn, err := net.Listen("tcp", cfg.Gateway.GRPCAddr)
	if err != nil {
		return &config.Error{Var: "PLAZA_GATEWAY_GRPC_ADDR", Msg: err.Error()}
	}
	defer grpcLn.Close()
	// No read or write timeout: they would cut WebSocket, SSE and gRPC streams. A route's
	// timeout bounds ordinary exchanges; headers and idle connections are bounded here.
	// HTTP/1.1 and cleartext HTTP/2 with prior knowledge (what a load balancer or service
	// mesh in front speaks) share the listener; WebSocket upgrades stay HTTP/1.1. The
	// gateway terminates no TLS today: HTTP2 stays in the set so that a TLS listener, once
	// there is one, negotiates HTTP/2 by ALPN.
	web := &http.Server{Handler: g, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		Protocols: new(http.Protocols), ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	web.Protocols.SetHTTP1(true)
	web.Protocols.SetHTTP2(true)
	web.Protocols.SetUnencryptedHTTP2(true)
	rpc := &http.Server{Handler: g.GRPCHandler(), ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		Protocols: new(http.Protocols), ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	rpc.Protocols.SetUnencryptedHTTP2(true)

	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	var side errgroup.Group // the pprof server, as on the instances
	defer side.Wait()
	defer stopBG()
	if cfg.DebugAddr != "" {
		if err := serveDebug(bg, cfg.DebugAddr, log, &side); err != nil {
			return err
		}
	}
	wg.Go(func() { g.Run(bg) })
	wg.Go(func() {
		for {
			select {
			case <-bg.Done():
				return
			case <-reload:
			}
			next, err := loadGatewayConfig(configFile, base)
			if err == nil {
				err = g.Reload(next)
			}
			if err != nil {
				log.Error("gateway: configuration not reloaded; the running one stays", "file", configFile, "err", err)
				continue
			}
			log.Info("gateway: configuration reloaded", "file", configFile)
		}
	})

	errs := make(chan error, 2)
	go func() { errs <- fmt.Errorf("gateway http server: %w", web.Serve(httpLn)) }()
	go func() { errs <- fmt.Errorf("gateway grpc server: %w", rpc.Serve(grpcLn)) }()
	log.Info("gateway grpc listening", "addr", grpcLn.Addr().String())
	log.Info("gateway listening", "addr", httpLn.Addr().String(), "routes", len(gcfg.Routes), "config", configFile)

	select {
	case err := <-errs:
		web.Close()
		rpc.Close()
		return err
	case <-ctx.Done():
	}
	log.Info("gateway shutting down", "timeout", cfg.ShutdownTimeout.String())
	g.SetDraining()
	g.EndStreams()
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var shut sync.WaitGroup
	var webErr, rpcErr error
	shut.Go(func() { webErr = web.Shutdown(drainCtx) })
	shut.Go(func() { rpcErr = rpc.Shutdown(drainCtx) })
	shut.Wait()
	if err := errors.Join(webErr, rpcErr, g.WaitStreams(drainCtx)); err != nil {
		web.Close()
		rpc.Close()
		return fmt.Errorf("gateway shutdown: requests did not finish within %s; connections were closed: %w", cfg.ShutdownTimeout, err)
	}
	log.Info("gateway shutdown complete")
	return nil
}

func loadGatewayConfig(file string, base gateway.Config) (gateway.Config, error) {
	if file == "" {
		return base, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return gateway.Config{}, &config.Error{Var: "--config", Msg: err.Error()}
	}
	cfg, err := gateway.ParseConfig(file, data, base)
	if err != nil {
		return gateway.Config{}, &config.Error{Var: "--config", Msg: err.Error()}
	}
	return cfg, nil
}

// openRegistry opens PLAZA_DISCOVERY, Redis by default when REDIS_URL is set.
func openRegistry(cfg config.Config, client *redis.Client, log *slog.Logger) (discovery.Registry, error) {
	spec := cfg.Discovery.Spec
	if spec == "" {
		if client == nil {
			return nil, &config.Error{Var: "PLAZA_DISCOVERY", Msg: "required without REDIS_URL (static:…, dns://… or dns+srv://…)"}
		}
		spec = "redis"
	}
	var rc redis.UniversalClient
	if client != nil {
		rc = client
	}
	reg, err := discovery.Open(spec, rc, log)
	if err != nil {
		return nil, &config.Error{Var: "PLAZA_DISCOVERY", Msg: err.Error()}
	}
	return reg, nil
}

// Instances runs `plaza instances`: what the registry holds, each instance probed on
// /readyz.
func Instances(ctx context.Context, cfg config.Config, log *slog.Logger, out io.Writer) error {
	var client *redis.Client
	if cfg.RedisURL != "" {
		opts, err := cache.ParseRedisURL(cfg.RedisURL)
		if err != nil {
			return &config.Error{Var: "REDIS_URL", Msg: err.Error()}
		}
		client = redis.NewClient(opts)
		defer client.Close()
	}
	reg, err := openRegistry(cfg, client, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	is, err := reg.Instances(ctx)
	if err != nil {
		return err
	}
	health := make([]string, len(is))
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 2 * time.Second}
	for i, in := range is {
		wg.Go(func() {
			res, err := hc.Get("http://" + in.HTTPAddr + "/readyz")
			switch {
			case err != nil:
				health[i] = "unreachable"
			case res.StatusCode == http.StatusOK:
				health[i] = "ready"
			default:
				health[i] = fmt.Sprintf("not ready (%d)", res.StatusCode)
			}
			if err == nil {
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHTTP\tGRPC\tZONE\tVERSION\tAGE\tHEALTH")
	for i, in := range is {
		age := "-"
		if !in.StartedAt.IsZero() {
			age = time.Since(in.StartedAt).Truncate(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.HTTPAddr, dash(in.GRPCAddr), dash(in.Zone), dash(in.Version), age, health[i])
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
