package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// maxReplayBody is the largest body of an idempotent request kept in memory so that the
// request can be retried after it reached an instance.
const maxReplayBody = 64 << 10

// errNoUpstream is answered 503: the pool has no instance to try.
var errNoUpstream = errors.New("no upstream available")

// errUpstreamFailed is what the circuit breaker is told of a failed exchange.
var errUpstreamFailed = errors.New("upstream failed")

// errClientGone is what the circuit breaker is told of an exchange the client abandoned
// (it cancelled or disconnected): it says nothing of the upstream, so it counts neither
// way (see the breaker's IsExcluded). A load generator's connections closing with requests
// in flight must not open the breakers.
var errClientGone = errors.New("client went away")

// errRouteTimeout ends an exchange that outlived its route's timeout.
var errRouteTimeout = fmt.Errorf("the route's timeout passed: %w", context.DeadlineExceeded)

// retrying is the RoundTripper under the reverse proxy: it chooses the upstream of each
// attempt, so a retry goes to another instance, and keeps the balancer's counts.
type retrying struct {
	g    *Gateway
	base http.RoundTripper
}

// exchange is what the handler tells the transport about a request, and what the
// transport tells the access log back.
type exchange struct {
	route    *route
	pool     *pool
	stream   bool
	grpc     bool
	upstream atomic.Pointer[upstream]
	retries  atomic.Int32
	timeout  *time.Timer // the route's timeout, stopped when the answer is a stream; nil: none
	// limited is set when the gateway put its own RateLimit-* fields on the answer.
	limited bool
}

// clientGone tells whether the exchange ended because the client cancelled or went away,
// rather than by the route's timeout (which says the instance was too slow).
func clientGone(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), errRouteTimeout)
}

// rateLimitFields are the response fields of a rate limit, in canonical form.
var rateLimitFields = []string{"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"}

// dropRepeated removes from an instance's answer the fields the gateway sets on it
// itself: the request ID (the instance echoes the one the gateway sent) and, when the
// gateway limited the request, the RateLimit-* fields, so the client reads each once.
// The names are canonical already: deleted from the map as they are, not canonicalized
// again per request.
func dropRepeated(h http.Header, x *exchange) {
	delete(h, "X-Request-Id")
	if x.limited {
		for _, f := range rateLimitFields {
			delete(h, f)
		}
	}
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

func (t *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchangeFrom(req.Context())
	cfg := t.g.config()
	idempotent := !x.grpc && idempotentMethod(req.Method)
	body := &onceBody{r: req.Body}
	if req.Body == nil || req.Body == http.NoBody {
		body = nil
	} else if req.ContentLength > 0 && req.ContentLength <= maxReplayBody {
		// Kept for every method: the transport below may then resend a request it knows
		// was not written (GetBody), and a POST may follow a refused connection elsewhere.
		// Whether a request is resent after it reached an instance is decided below, by
		// method, not by whether the body could be.
		b, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
		if err != nil {
			return nil, err
		}
		body = &onceBody{r: io.NopCloser(bytes.NewReader(b)), replay: b}
	}
	t.g.budget.request()
	var tried []*upstream
	var lastErr error
	for attempt := 0; ; attempt++ {
		u := x.pool.pick(x.stream, tried)
		if u == nil {
			if lastErr == nil {
				lastErr = errNoUpstream
			}
			return nil, lastErr
		}
		tried = append(tried, u)
		done, err := u.breaker.Allow()
		if err != nil {
			// Open, or half-open with its probe out: no request went anywhere.
			lastErr = errNoUpstream
			continue
		}
		// A shallow copy with a URL of its own: ReverseProxy's outgoing request is already a
		// deep copy of the client's, and a RoundTripper only reads the headers, so the
		// attempts may share them.
		out := new(http.Request)
		*out = *req
		url := *req.URL
		url.Scheme, url.Host = "http", u.addr
		out.URL = &url
		if body != nil {
			out.Body = body.next()
			if body.replay != nil {
				out.GetBody = func() (io.ReadCloser, error) { return body.next(), nil }
			}
		}
		x.upstream.Store(u)
		load := &u.inflight
		if x.stream {
			load = &u.streams
		}
		load.Add(1)
		res, err := t.base.RoundTrip(out)
		more := attempt+1 < cfg.Retry.Attempts
		switch {
		case err != nil && clientGone(req.Context()):
			load.Add(-1)
			done(errClientGone)
			return nil, err
		case err != nil && notProcessed(err):
			// It never reached the instance: any request may go elsewhere, and no
			// instance got extra load from it, so the budget is not charged.
			load.Add(-1)
			done(errUpstreamFailed)
			t.g.upstreamFailed(x.pool, u, "connect_error")
			lastErr = err
			if more && body.rewindable() {
				x.retries.Add(1)
				t.g.metrics.retries.WithLabelValues(x.route.Name, "connect").Inc()
				continue
			}
			return nil, err
		case err != nil:
			load.Add(-1)
			done(errUpstreamFailed)
			t.g.upstreamFailed(x.pool, u, "error")
			lastErr = err
			// A route's timeout counts against the instance, but leaves no time to retry.
			if more && idempotent && body.rewindable() && req.Context().Err() == nil && t.g.retryAllowed(x) {
				continue
			}
			return nil, err
		case res.StatusCode >= 500:
			done(errUpstreamFailed)
			t.g.upstreamFailed(x.pool, u, "5xx")
			if more && idempotent && retryableStatus(res.StatusCode) && body.rewindable() && t.g.retryAllowed(x) {
				io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
				res.Body.Close()
				load.Add(-1)
				continue
			}
		default:
			done(nil)
			t.g.upstreamSucceeded(x.pool, u)
		}
		if x.timeout != nil && streamResponse(res) {
			x.timeout.Stop()
		}
		res.Body = &countedBody{ReadCloser: res.Body, load: load}
		dropRepeated(res.Header, x)
		return res, nil
	}
}

// retryAllowed takes a retry from the budget, counting refusals.
func (g *Gateway) retryAllowed(x *exchange) bool {
	if !g.budget.retry() {
		g.metrics.budgetExhausted.Inc()
		return false
	}
	x.retries.Add(1)
	g.metrics.retries.WithLabelValues(x.route.Name, "idempotent").Inc()
	return true
}

func idempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// retryableStatus: the instance could not answer (a proxy in front of it, or it is
// overloaded or going away); another may. A 500 is the application's answer and stands.
func retryableStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// notProcessed reports whether err says the instance cannot have acted on the request:
// the dial failed (refused, unreachable, timed out), or the instance closed the idle
// connection the request was sent on. The instances are Go http.Servers, which close a
// connection as idle (when draining, or after their idle timeout) only while no request
// on it is being read, so a request that met that close was never processed. net/http
// resends such a request by itself only when it is idempotent; here any may go elsewhere.
func notProcessed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "server closed idle connection")
}

// onceBody lets a request body be sent again: from memory when it was buffered, or as
// is when the failed attempt never read it (a connect error). The transport closes a
// body when it is done with it; that Close is not passed on, because the server closes
// the client's body at the end of the handler.
type onceBody struct {
	r      io.ReadCloser
	replay []byte
	read   atomic.Bool
}

func (b *onceBody) next() io.ReadCloser {
	if b.replay != nil {
		return io.NopCloser(bytes.NewReader(b.replay))
	}
	return &attemptBody{b: b}
}

// rewindable reports whether the body can be sent again (no body is always).
func (b *onceBody) rewindable() bool {
	return b == nil || b.replay != nil || !b.read.Load()
}

type attemptBody struct{ b *onceBody }

func (a *attemptBody) Read(p []byte) (int, error) {
	n, err := a.b.r.Read(p)
	if n > 0 {
		a.b.read.Store(true)
	}
	return n, err
}

func (a *attemptBody) Close() error { return nil }

// countedBody keeps the request counted against its upstream until the response body
// is closed: for a stream (WebSocket, SSE, gRPC) that is when the stream ends. It keeps
// Write for a 101 response, whose body the proxy uses as the upgraded connection.
type countedBody struct {
	io.ReadCloser
	load *atomic.Int64
	once atomic.Bool
}

func (c *countedBody) Write(p []byte) (int, error) {
	if w, ok := c.ReadCloser.(io.Writer); ok {
		return w.Write(p)
	}
	return 0, errors.New("gateway: response body is not writable")
}

func (c *countedBody) Close() error {
	if c.once.CompareAndSwap(false, true) {
		c.load.Add(-1)
	}
	return c.ReadCloser.Close()
}

// newTransport is the pooled HTTP/1.1 transport to the instances. The chapter's client
// settings (MaxIdleConns 100, 10 per host) are for a client; a proxy carries every
// client's requests to a few hosts, so it keeps many more idle connections per host (a
// new connection per request costs more than the request). Connecting gets one second:
// a dead instance should cost a retry, not a hung request.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass encodings through untouched
	}
}

// newGRPCTransport speaks HTTP/2 without TLS (h2c, prior knowledge) to the instances'
// gRPC servers; one connection per instance carries many concurrent calls.
func newGRPCTransport() *http.Transport {
	t := &http.Transport{
		DialContext:     (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		IdleConnTimeout: 90 * time.Second,
		Protocols:       new(http.Protocols),
	}
	t.Protocols.SetUnencryptedHTTP2(true)
	return t
}
