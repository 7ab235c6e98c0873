// Command baseline is the bench harness's yardstick: a bare net/http server that answers
// every request with a small JSON object, in its own process. Plaza's figures are reported
// as ratios to it, measured in the same run on the same machine, because absolute numbers
// drift between runs and machines.
//
// With -proxy it is instead a bare httputil.ReverseProxy in front of that URL, with the
// connection pool a proxy needs and nothing else (no access log, limiter, balancing or
// retries): what the standard library's proxy alone achieves on the machine, the floor
// under any Go gateway's throughput.
//
// It listens on loopback only and exits by itself after -lifetime even if the harness that
// started it died without stopping it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// item has the shape of a small API resource: an ID, a name, money and a time.
type item struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	PriceCents int64     `json:"price_cents"`
	Currency   string    `json:"currency"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	lifetime := flag.Duration("lifetime", 15*time.Minute, "exit after this long whatever happens")
	proxy := flag.String("proxy", "", "serve as a bare reverse proxy to this URL instead")
	flag.Parse()
	if err := run(*addr, *lifetime, *proxy); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(addr string, lifetime time.Duration, proxy string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to listen on %q: loopback addresses only", addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, lifetime)
	defer cancel()

	body := item{ID: "0190b3a2-7c1e-7f00-8000-000000000001", Name: "Baseline item", PriceCents: 1299,
		Currency: "USD", UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
	if proxy != "" {
		target, err := url.Parse(proxy)
		if err != nil || target.Scheme != "http" || target.Host == "" {
			return fmt.Errorf("-proxy: want an http:// URL, got %q", proxy)
		}
		// The default transport keeps 2 idle connections per host: under the harness's
		// 16 connections most requests would dial. A proxy keeps one per client connection.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 256
		handler = &httputil.ReverseProxy{
			Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
			Transport: tr,
		}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
