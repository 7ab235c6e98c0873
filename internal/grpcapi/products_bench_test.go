package grpcapi

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/httpapi"
	"plaza/internal/plaza"
)

// BenchmarkGetProduct reads one cached product over a loopback socket, one call at a
// time, with the headline settings of bench/cmd/plazabench (access log at info, rate
// limiter on at a rate never reached): grpc is GetProduct, rest is GET /api/products/{id}
// from a server over the same catalog. ns/op and allocs/op count the client too, which
// is the same on both sides of a before/after comparison.
func BenchmarkGetProduct(b *testing.B) {
	opts := Options{
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		RateLimit: 1e6, RateBurst: 1e6,
	}
	s := newCatalogServer(b, false, opts)
	p, err := s.products.Create(plaza.WithPrincipal(b.Context(), admin), everyField("Mug"))
	if err != nil {
		b.Fatal(err)
	}

	b.Run("grpc", func(b *testing.B) {
		c := dial(b, s.addr)
		req := &plazav1.GetProductRequest{Id: p.ID}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.GetProduct(b.Context(), req); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("rest", func(b *testing.B) {
		h := httpapi.New(httpapi.Options{Logger: opts.Logger, RateLimit: opts.RateLimit, RateBurst: opts.RateBurst, Catalog: s.products})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		b.Cleanup(client.CloseIdleConnections)
		url := "http://" + ln.Addr().String() + "/api/products/" + p.ID
		b.ReportAllocs()
		for b.Loop() {
			res, err := client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				b.Fatalf("%d %v", res.StatusCode, err)
			}
		}
	})
}
