// Package grpcapi is Plaza's gRPC transport (package plaza.v1, api/proto): the Auth, User,
// Product and Chat services over the same services as REST, with server reflection,
// grpc.health.v1 and one interceptor chain. Handlers convert messages, call a service and
// convert back; business rules and authorization live in the services, and errors are
// mapped to status codes in one place (toStatus).
package grpcapi

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/plaza"
	"plaza/internal/ratelimit"
)

// Options configures the transport.
type Options struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// RateLimit is calls per second per client (the user when signed in, else the peer IP);
	// 0 turns limiting off. A stream counts once, when it opens.
	RateLimit float64
	RateBurst int
	// MaxRecvMsgSize caps one request message in bytes (RESOURCE_EXHAUSTED beyond); 0
	// means 1 MiB, REST's body cap.
	MaxRecvMsgSize int
	// TLS serves TLS when set, else plaintext h2c (for a mesh or a proxy that terminates TLS).
	TLS *tls.Config

	Auth    Authenticator
	Users   Users
	Catalog Catalog
	Chat    Chat
	Bus     Subscriber
	// PresenceTTL is how long a StreamRoom member outlives this instance; the stream
	// renews its presence every third of it.
	PresenceTTL time.Duration
	// Ready reports readiness (the critical dependencies answer); grpc.health.v1 says
	// SERVING while it holds, and NOT_SERVING from the start of a drain.
	Ready func(ctx context.Context) bool
	// Shutdown ends every open stream with UNAVAILABLE when it is done, so GracefulStop
	// need not wait for streams that would never end by themselves.
	Shutdown context.Context
}

// Failed authentications allowed per client IP, as on REST: a burst, then one a second.
const (
	authFailureRate  = 1.0
	authFailureBurst = 10
)

// Keepalive: the server pings an idle connection every 2 minutes and drops it when the
// ping is not answered within 20 s; clients may ping at most every 10 s (more often is a
// GOAWAY: a ping flood costs the server, not the client).
const (
	keepaliveTime    = 2 * time.Minute
	keepaliveTimeout = 20 * time.Second
	minClientPing    = 10 * time.Second
	// maxStreams bounds concurrent calls per connection.
	maxStreams = 256
	// streamWorkersPerCPU: enough goroutines kept for calls that wait on a remote cache or
	// database, few enough that their stacks cost little while idle.
	streamWorkersPerCPU = 4
)

// Server is the gRPC API.
type Server struct {
	log          *slog.Logger
	opts         Options
	srv          *grpc.Server
	health       *health.Server
	draining     chan struct{} // closed when the drain starts
	drainOnce    sync.Once
	limiter      *ratelimit.Limiter
	authFailures *ratelimit.Limiter
	metrics      *metrics
	responses    *responses // GetProduct's, encoded
}

// services are the names health reports on besides the server as a whole ("").
var services = []string{
	plazav1.AuthService_ServiceDesc.ServiceName,
	plazav1.UserService_ServiceDesc.ServiceName,
	plazav1.ProductService_ServiceDesc.ServiceName,
	plazav1.ChatService_ServiceDesc.ServiceName,
}

// New builds the server with every service, reflection, health and the interceptor chain.
func New(opts Options) *Server {
	s := &Server{log: opts.Logger, opts: opts, health: health.NewServer(), draining: make(chan struct{}),
		responses: newResponses(responseCacheBytes)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.Shutdown == nil {
		s.opts.Shutdown = context.Background()
	}
	if s.opts.PresenceTTL <= 0 {
		s.opts.PresenceTTL = 30 * time.Second
	}
	if opts.RateLimit > 0 {
		s.limiter = ratelimit.New(opts.RateLimit, opts.RateBurst)
		s.authFailures = ratelimit.New(min(opts.RateLimit, authFailureRate), authFailureBurst)
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(reg)
	maxRecv := opts.MaxRecvMsgSize
	if maxRecv <= 0 {
		maxRecv = 1 << 20
	}

	// The chain, outermost first; each step's place is deliberate:
	//  1. identify: request ID and peer IP first, so every later line can quote them;
	//  2. observe: access log and metrics see the final status code;
	//  3. mapErrors: the one conversion of plaza errors to statuses, inside observe so the
	//     log and metrics count the code the client gets;
	//  4. recoverPanics: a panic becomes an internal error, mapped and logged like others;
	//  5. authenticate: before the limiter, so a signed-in user is limited as themself;
	//  6. rateLimit: per user or per IP; health checks are exempt.
	srvOpts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.identifyUnary, s.observeUnary, s.mapErrorsUnary, s.recoverUnary, s.authenticateUnary, s.rateLimitUnary),
		grpc.ChainStreamInterceptor(s.identifyStream, s.observeStream, s.mapErrorsStream, s.recoverStream, s.authenticateStream, s.rateLimitStream),
		grpc.ForceServerCodecV2(newCodec()), // sends GetProduct's encoded responses as they are
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.MaxConcurrentStreams(maxStreams),
		// Calls run on goroutines kept for the next call, as net/http serves a keep-alive
		// connection's requests on one goroutine, rather than a new one each, whose stack
		// the chain grows again on every call. A call finding every worker busy (with a
		// stream, or waiting on Redis) gets a goroutine of its own as before.
		grpc.NumStreamWorkers(uint32(streamWorkersPerCPU * runtime.GOMAXPROCS(0))),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minClientPing, PermitWithoutStream: true}),
	}
	if opts.TLS != nil {
		srvOpts = append(srvOpts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	s.srv = grpc.NewServer(srvOpts...)
	plazav1.RegisterAuthServiceServer(s.srv, authService{s})
	plazav1.RegisterUserServiceServer(s.srv, userService{s})
	s.srv.RegisterService(productServiceDesc(productService{s}), productService{s})
	plazav1.RegisterChatServiceServer(s.srv, chatService{s})
	healthpb.RegisterHealthServer(s.srv, healthService{Server: s.health, draining: s.draining, shutdown: s.opts.Shutdown})
	reflection.Register(s.srv)
	s.setServing(false)
	return s
}

// Serve serves on ln until Stop; it returns nil after a stop.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// healthService is grpc's health server with a Watch of its own: grpc's never ends by
// itself, so GracefulStop would wait for every watcher until the drain time is up, and
// ending it at the drain could race the NOT_SERVING it was about to send. This one sends
// every change of Check's answer, NOT_SERVING at once when the drain starts, and ends with
// UNAVAILABLE when the streams are told to stop, after NOT_SERVING in any case.
type healthService struct {
	*health.Server
	draining <-chan struct{}
	shutdown context.Context
}

func (h healthService) Watch(req *healthpb.HealthCheckRequest, ss grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	ctx := ss.Context()
	tick := time.NewTicker(readinessEvery)
	defer tick.Stop()
	last := healthpb.HealthCheckResponse_ServingStatus(-1)
	send := func(st healthpb.HealthCheckResponse_ServingStatus) error {
		if st == last {
			return nil
		}
		last = st
		return ss.Send(&healthpb.HealthCheckResponse{Status: st})
	}
	draining := h.draining
	for {
		st := healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		if res, err := h.Check(ctx, req); err == nil {
			st = res.GetStatus()
		}
		if err := send(st); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.shutdown.Done():
			if err := send(healthpb.HealthCheckResponse_NOT_SERVING); err != nil {
				return err
			}
			return plaza.Errorf(plaza.EUnavailable, "the server is shutting down")
		case <-draining:
			draining = nil // Check says NOT_SERVING from now on
		case <-tick.C:
		}
	}
}

// readinessEvery is how often health follows readiness; Ready reuses its probe for a
// second, so polling faster would only reread the same answer.
const readinessEvery = time.Second

// WatchReadiness keeps health's status in line with Ready until ctx is done.
func (s *Server) WatchReadiness(ctx context.Context) {
	t := time.NewTicker(readinessEvery)
	defer t.Stop()
	for {
		if s.opts.Ready != nil {
			s.setServing(s.opts.Ready(ctx))
		} else {
			s.setServing(true)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	for _, name := range services {
		s.health.SetServingStatus(name, st)
	}
}

// SetDraining turns every health status to NOT_SERVING for good, at once, so balancers
// move traffic away while calls in flight finish.
func (s *Server) SetDraining() {
	s.drainOnce.Do(func() {
		s.health.Shutdown()
		close(s.draining)
	})
}

// Close stops at once: every connection closes and every call ends.
func (s *Server) Close() { s.srv.Stop() }

// ErrForcedStop says that calls were still running when the drain time was up.
var ErrForcedStop = errors.New("grpc: forced stop")

// Stop stops accepting calls and waits for those in flight until ctx is done, then closes
// every connection (ErrForcedStop). Open streams end by themselves once Options.Shutdown
// is done.
func (s *Server) Stop(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.srv.Stop()
		<-done
		return ErrForcedStop
	}
}
