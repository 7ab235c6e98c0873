package grpcapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"plaza/internal/logx"
	"plaza/internal/plaza"
)

// callInfo is filled in as a call travels the chain, so the access log can report who
// made it.
type callInfo struct {
	id     string
	ip     string
	userID string
}

type callInfoKey struct{}

func infoFrom(ctx context.Context) *callInfo {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		return ci
	}
	return &callInfo{}
}

// RequestIDFrom returns the request ID of the call ctx belongs to, or "".
func RequestIDFrom(ctx context.Context) string { return infoFrom(ctx).id }

// requestIDKey is the metadata key of the request ID, in and out (docs/contracts.md).
const requestIDKey = "x-request-id"

// stream is a server stream with a context of the chain's making.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

func withContext(ss grpc.ServerStream, ctx context.Context) grpc.ServerStream {
	return &stream{ServerStream: ss, ctx: ctx}
}

// identify accepts a well-formed incoming x-request-id or makes one, echoes it in the
// response headers, and carries it in the context with the peer's IP (also as
// plaza.ClientIPFrom, for the services' per-client throttles). The peer is the TCP peer:
// unlike REST, no forwarded-for header is believed.
func (s *Server) identify(ctx context.Context, setHeader func(metadata.MD) error) context.Context {
	id := ""
	if v := metadata.ValueFromIncomingContext(ctx, requestIDKey); len(v) > 0 && plaza.ValidRequestID(v[0]) {
		id = v[0]
	} else {
		id = plaza.NewRequestID()
	}
	_ = setHeader(metadata.MD{requestIDKey: {id}})
	ci := &callInfo{id: id, ip: peerIP(ctx)}
	return plaza.WithClientIP(context.WithValue(ctx, callInfoKey{}, ci), ci.ip)
}

func (s *Server) identifyUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx = s.identify(ctx, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
	return h(ctx, req)
}

func (s *Server) identifyStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, withContext(ss, s.identify(ss.Context(), ss.SetHeader)))
}

func peerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	// The host part of the address's String, without formatting the port only to cut it.
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		if len(a.IP) == 0 {
			return ""
		}
		if a.Zone != "" {
			return a.IP.String() + "%" + a.Zone
		}
		return a.IP.String()
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host
	}
	return p.Addr.String()
}

// observe writes the access log line, in the shape of REST's ("request" with method,
// route, status, duration, request_id, user_id, client_ip; status is the gRPC code's
// number and code its name), and the metrics.
func (s *Server) observe(ctx context.Context, method, kind string, start time.Time, err error) {
	code := status.Code(err)
	end := time.Now()
	d := end.Sub(start)
	s.metrics.observe(method, kind, code, d)
	level := slog.LevelInfo
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelError
	}
	ci := infoFrom(ctx)
	logx.Access(ctx, s.log, end, level,
		slog.String("transport", "grpc"),
		slog.String("method", kind),
		slog.String("route", method),
		slog.Int("status", int(code)),
		slog.String("code", code.String()),
		slog.Duration("duration", d),
		slog.String("request_id", ci.id),
		slog.String("user_id", ci.userID),
		slog.String("client_ip", ci.ip),
	)
}

func (s *Server) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	resp, err := h(ctx, req)
	s.observe(ctx, info.FullMethod, "unary", start, err)
	return resp, err
}

func (s *Server) observeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	err := h(srv, ss)
	s.observe(ss.Context(), info.FullMethod, "stream", start, err)
	return err
}

func (s *Server) mapErrorsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return resp, nil
}

func (s *Server) mapErrorsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return toStatus(ss.Context(), s.log, h(srv, ss))
}

// recovered turns a panic into an internal error and logs its stack; the server keeps
// serving.
func (s *Server) recovered(ctx context.Context, method string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	s.log.ErrorContext(ctx, "panic serving call", "panic", fmt.Sprint(v), "method", method,
		"stack", string(debug.Stack()), "request_id", RequestIDFrom(ctx))
	*err = plaza.Errorf(plaza.EInternal, "panic")
}

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer s.recovered(ctx, info.FullMethod, &err)
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer s.recovered(ss.Context(), info.FullMethod, &err)
	return h(srv, ss)
}

// authenticate puts the principal of a valid `authorization: Bearer` token in the
// context. A call without credentials passes on as anonymous (the services decide what
// anonymous may do); bad credentials are UNAUTHENTICATED here, and count against the peer
// IP's bucket of failed authentications, as on REST: a client sending garbage tokens gets
// RESOURCE_EXHAUSTED once that smaller bucket is empty.
func (s *Server) authenticate(ctx context.Context) (context.Context, error) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return ctx, nil
	}
	scheme, token, _ := strings.Cut(vals[0], " ")
	token = strings.TrimSpace(token)
	if len(vals) > 1 || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return ctx, s.authFailed(ctx, plaza.Errorf(plaza.EUnauthenticated, `the authorization metadata must be one "Bearer <token>"`))
	}
	if s.opts.Auth == nil {
		return ctx, s.authFailed(ctx, plaza.Errorf(plaza.EUnauthenticated, "this server does not accept bearer tokens"))
	}
	p, err := s.opts.Auth.Authenticate(ctx, token)
	if plaza.ErrorCodeOf(err) == plaza.EUnauthenticated {
		return ctx, s.authFailed(ctx, err)
	}
	if err != nil {
		return ctx, err
	}
	infoFrom(ctx).userID = p.UserID
	return plaza.WithPrincipal(ctx, p), nil
}

func (s *Server) authFailed(ctx context.Context, err error) error {
	if s.authFailures != nil {
		if ok, retry := s.authFailures.Allow("ip:" + infoFrom(ctx).ip); !ok {
			return &plaza.Error{Code: plaza.ERateLimited, RetryAfter: retry,
				Message: "too many calls with bad credentials; retry after the delay in RetryInfo"}
		}
	}
	return err
}

func (s *Server) authenticateUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) authenticateStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context())
	if err != nil {
		return err
	}
	return h(srv, withContext(ss, ctx))
}

// healthPrefix: probes must never be throttled.
const healthPrefix = "/grpc.health.v1.Health/"

// limit takes a token from the caller's bucket: the user when signed in, else the IP.
func (s *Server) limit(ctx context.Context, method string) error {
	if s.limiter == nil || strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	key := "ip:" + infoFrom(ctx).ip
	if p, ok := plaza.PrincipalFrom(ctx); ok {
		key = "user:" + p.UserID
	}
	if ok, retry := s.limiter.Allow(key); !ok {
		return &plaza.Error{Code: plaza.ERateLimited, RetryAfter: retry,
			Message: "too many calls; retry after the delay in RetryInfo"}
	}
	return nil
}

func (s *Server) rateLimitUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.limit(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) rateLimitStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.limit(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
