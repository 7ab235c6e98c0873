// Command productload reads one product again and again, over gRPC (plaza.v1
// ProductService.GetProduct) or over REST (GET /api/products/{id}), from a fixed number of
// concurrent callers for a fixed time, and prints what it measured as one line in the
// shape bench/lua/report.lua prints for wrk: "PLAZABENCH {json}", latencies in microseconds.
//
// plazabench runs it for issue 15's comparison: the same client code, the same
// concurrency and the same product on both transports, so the ratio compares the servers,
// not two load generators. Over gRPC the callers share -grpc-conns connections, several
// streams on each, as a service-to-service client would; over REST each caller has a
// keep-alive connection of its own (HTTP/1.1 has one request in flight per connection).
//
// It sends to loopback only what it is told to, stops after -duration, and exits.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	plazav1 "plaza/api/proto/plaza/v1"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "productload:", err)
		os.Exit(1)
	}
}

type options struct {
	transport   string
	addr        string
	id          string
	concurrency int
	grpcConns   int
	duration    time.Duration
	timeout     time.Duration
}

func run(args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("productload", flag.ContinueOnError)
	fs.StringVar(&o.transport, "transport", "grpc", "grpc or rest")
	fs.StringVar(&o.addr, "addr", "", "host:port of Plaza's gRPC listener (grpc) or HTTP listener (rest)")
	fs.StringVar(&o.id, "id", "", "the product to read")
	fs.IntVar(&o.concurrency, "concurrency", 16, "callers, each with one request in flight")
	fs.IntVar(&o.grpcConns, "grpc-conns", 4, "gRPC connections the callers share")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.addr == "" || o.id == "" || o.concurrency < 1 || o.grpcConns < 1 || o.duration <= 0 {
		return errors.New("need -addr, -id, -concurrency >= 1, -grpc-conns >= 1 and -duration > 0")
	}
	var call func(ctx context.Context, worker int) outcome
	switch o.transport {
	case "grpc":
		clients := make([]plazav1.ProductServiceClient, o.grpcConns)
		for i := range clients {
			conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return err
			}
			defer conn.Close()
			clients[i] = plazav1.NewProductServiceClient(conn)
		}
		req := &plazav1.GetProductRequest{Id: o.id}
		call = func(ctx context.Context, worker int) outcome {
			_, err := clients[worker%len(clients)].GetProduct(ctx, req)
			if err != nil {
				return outcome{err: status.Code(err).String()}
			}
			return outcome{status: http.StatusOK}
		}
	case "rest":
		tr := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: o.timeout}).DialContext,
			MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
			DisableCompression: true,
		}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		url := "http://" + o.addr + "/api/products/" + o.id
		call = func(ctx context.Context, _ int) outcome {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return outcome{err: err.Error()}
			}
			resp, err := client.Do(req)
			if err != nil {
				return outcome{err: "transport"}
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return outcome{err: "read"}
			}
			return outcome{status: resp.StatusCode, bytes: n, cache: resp.Header.Get("X-Cache")}
		}
	default:
		return fmt.Errorf("-transport: expected grpc or rest, got %q", o.transport)
	}
	res := drive(o, call)
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "PLAZABENCH %s\n", b)
	return err
}

// outcome is one request's answer: an HTTP status (200 for a gRPC OK), or what failed.
type outcome struct {
	status int
	bytes  int64
	cache  string
	err    string // a gRPC status code name or a transport failure; "" when answered
}

// worker is what one caller saw.
type worker struct {
	took             []time.Duration
	bytes            int64
	s2, s3, s4, s5   int64
	hit, miss        int64
	failed, timeouts int64
	firstBad         int
	firstFailed      string
}

// drive runs the callers until the duration is over and adds up what they saw.
func drive(o options, call func(context.Context, int) outcome) result {
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	ws := make([]worker, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ws {
		wg.Go(func() {
			w := &ws[i]
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(context.Background(), o.timeout)
				t0 := time.Now()
				out := call(rctx, i)
				took := time.Since(t0)
				rcancel()
				switch {
				case out.err == "DeadlineExceeded" || errors.Is(rctx.Err(), context.DeadlineExceeded):
					w.timeouts++
					continue
				case out.err != "":
					w.failed++
					if w.firstFailed == "" {
						w.firstFailed = out.err
					}
					continue
				}
				w.took = append(w.took, took)
				w.bytes += out.bytes
				switch out.status / 100 {
				case 2:
					w.s2++
				case 3:
					w.s3++
				case 4:
					w.s4++
				default:
					w.s5++
				}
				if out.status >= 400 && w.firstBad == 0 {
					w.firstBad = out.status
				}
				switch out.cache {
				case "HIT":
					w.hit++
				case "MISS":
					w.miss++
				}
			}
		})
	}
	wg.Wait()
	return summarize(ws, time.Since(start))
}

// result is report.lua's JSON shape (bench/cmd/plazabench reads it as its Result).
type result struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Bytes      int64 `json:"bytes"`
	Errors     struct {
		Connect int64 `json:"connect"`
		Read    int64 `json:"read"`
		Write   int64 `json:"write"`
		Timeout int64 `json:"timeout"`
		Status  int64 `json:"status"`
	} `json:"errors"`
	Status struct {
		S2xx     int64 `json:"2xx"`
		S3xx     int64 `json:"3xx"`
		S4xx     int64 `json:"4xx"`
		S5xx     int64 `json:"5xx"`
		FirstBad int   `json:"first_bad"`
	} `json:"status"`
	Cache struct {
		Hit  int64 `json:"hit"`
		Miss int64 `json:"miss"`
	} `json:"cache"`
	// FirstFailure names the first failed call's gRPC code or transport failure.
	FirstFailure string `json:"first_failure,omitempty"`
	LatencyUS    struct {
		Mean float64 `json:"mean"`
		P50  int64   `json:"p50"`
		P90  int64   `json:"p90"`
		P99  int64   `json:"p99"`
		P999 int64   `json:"p999"`
		Max  int64   `json:"max"`
	} `json:"latency_us"`
}

// summarize adds the callers' counts; failed calls count as read errors (wrk's word for
// a connection that broke mid-answer), answers of 400 or more by their status class.
func summarize(ws []worker, elapsed time.Duration) result {
	var r result
	var all []time.Duration
	for _, w := range ws {
		all = append(all, w.took...)
		r.Bytes += w.bytes
		r.Status.S2xx += w.s2
		r.Status.S3xx += w.s3
		r.Status.S4xx += w.s4
		r.Status.S5xx += w.s5
		r.Cache.Hit += w.hit
		r.Cache.Miss += w.miss
		r.Errors.Read += w.failed
		r.Errors.Timeout += w.timeouts
		if r.FirstFailure == "" {
			r.FirstFailure = w.firstFailed
		}
		if r.Status.FirstBad == 0 {
			r.Status.FirstBad = w.firstBad
		}
	}
	r.Errors.Status = r.Status.S4xx + r.Status.S5xx
	r.Requests = int64(len(all))
	r.DurationUS = elapsed.Microseconds()
	if len(all) == 0 {
		return r
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	at := func(q float64) int64 { return all[min(int(q*float64(len(all))), len(all)-1)].Microseconds() }
	r.LatencyUS.Mean = float64(sum.Microseconds()) / float64(len(all))
	r.LatencyUS.P50, r.LatencyUS.P90, r.LatencyUS.P99, r.LatencyUS.P999 = at(0.50), at(0.90), at(0.99), at(0.999)
	r.LatencyUS.Max = all[len(all)-1].Microseconds()
	return r
}
