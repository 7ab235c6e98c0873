package realtime

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"plaza/internal/bus"
)

var (
	idleConns   = flag.Int("idleconns", 2000, "connections BenchmarkIdleConnection opens")
	idleProfile = flag.String("idleprofile", "", "directory BenchmarkIdleConnection writes the server's heap profiles in (<transport>.heap)")
)

// idleServerEnv makes the test binary an idle-connection server (see TestMain): the
// benchmark measures a process of its own, so its clients' memory does not count.
const idleServerEnv = "PLAZA_REALTIME_IDLE_SERVER"

func TestMain(m *testing.M) {
	if v := os.Getenv(idleServerEnv); v != "" {
		if v == "profile" {
			runtime.MemProfileRate = 1 // every allocation, not a sample
		}
		if err := serveIdle(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// idleMemory is what the idle server reports about itself, after collecting garbage.
type idleMemory struct {
	RSS, HeapInuse, StackInuse int64
	Goroutines                 int
}

// serveIdle serves /ws and /api/events as newTestServer does, plus GET /mem, and POST
// /publish and /cpuprofile for BenchmarkFanOut, until in closes. It writes its address to
// out first.
func serveIdle(in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := bus.NewMemory(bus.MemoryOptions{})
	defer b.Close()
	s := New(Options{Chat: fakeChat{}, Bus: b, Shutdown: ctx, MaxConnsPerUser: 1 << 20})
	mux := testMux(s)
	mux.HandleFunc("GET /mem", func(w http.ResponseWriter, r *http.Request) {
		// Twice: the first collection may leave stacks it shrank and finalizers to run.
		for range 6 {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, err := vmRSS()
		if path := r.URL.Query().Get("heap"); path != "" && err == nil {
			err = writeHeapProfile(path)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(idleMemory{RSS: rss, HeapInuse: int64(ms.HeapInuse), StackInuse: int64(ms.StackInuse), Goroutines: runtime.NumGoroutine()})
	})
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		if err := publishFanOut(r.Context(), b, r.URL.Query().Get("transport"), r.URL.Query().Get("n")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /cpuprofile", func(w http.ResponseWriter, r *http.Request) {
		if err := cpuProfile(r.URL.Query().Get("path")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	fmt.Fprintln(out, ln.Addr().String())
	_, _ = io.Copy(io.Discard, in)
	cancel()
	return hs.Close()
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// vmRSS reads this process's resident set size, as the bench harness reads Plaza's.
func vmRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// BenchmarkIdleConnection opens -idleconns WebSocket members of one room, or anonymous
// SSE subscribers, to a server in a process of its own, lets them idle, and reports what
// each costs that process: resident memory (as `make bench` measures it), heap, goroutine
// stacks and goroutines. Run it with -benchtime=1x.
func BenchmarkIdleConnection(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads VmRSS from /proc")
	}
	for _, transport := range []string{"ws", "sse"} {
		b.Run(transport, func(b *testing.B) {
			for range b.N {
				idleConnection(b, transport, *idleConns)
			}
		})
	}
}

// startServer runs this test binary again as the benchmark's server (serveIdle) in mode,
// so that its memory and CPU are its own, and returns its base URL and process ID; the
// server ends when the benchmark does.
func startServer(b *testing.B, mode string) (string, int) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), idleServerEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return "http://" + strings.TrimSpace(addr), cmd.Process.Pid
}

func idleConnection(b *testing.B, transport string, n int) {
	mode := "serve"
	if *idleProfile != "" {
		mode = "profile" // the figures then include the profiler's own memory
	}
	base, _ := startServer(b, mode)
	mem := func(query string) idleMemory {
		time.Sleep(3 * time.Second) // as the bench harness idles before reading
		res, err := http.Get(base + "/mem" + query)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		var m idleMemory
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
			b.Fatal(err)
		}
		return m
	}

	before := mem("")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1}}
	var closers []func()
	var mu sync.Mutex
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			closer, err := openIdle(ctx, client, base, transport, "user"+strconv.Itoa(i%100))
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			mu.Lock()
			closers = append(closers, closer)
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	query := ""
	if *idleProfile != "" {
		query = "?heap=" + url.QueryEscape(filepath.Join(*idleProfile, transport+".heap"))
	}
	after := mem(query)
	per := func(a, z int64) float64 { return float64(z-a) / float64(n) }
	b.ReportMetric(per(before.RSS, after.RSS), "rss-bytes/conn")
	b.ReportMetric(per(before.HeapInuse, after.HeapInuse), "heap-bytes/conn")
	b.ReportMetric(per(before.StackInuse, after.StackInuse), "stack-bytes/conn")
	b.ReportMetric(per(int64(before.Goroutines), int64(after.Goroutines)), "goroutines/conn")
}

// openIdle opens one idle connection: a WebSocket member of general, or an SSE stream.
func openIdle(ctx context.Context, client *http.Client, base, transport, user string) (func(), error) {
	if transport == "ws" {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", &websocket.DialOptions{
			HTTPClient: client, HTTPHeader: http.Header{"X-User": {user}},
		})
		if err != nil {
			return nil, err
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","room":"general"}`)); err != nil {
			c.CloseNow()
			return nil, err
		}
		if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"type":"joined"`) {
			c.CloseNow()
			return nil, fmt.Errorf("join: %s %v", b, err)
		}
		// Keep reading, as a client does: pings are answered and the server never waits.
		go func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		return func() { c.CloseNow() }, nil
	}
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/events?types=product.updated", nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("events: %s", res.Status)
	}
	go func() { _, _ = io.Copy(io.Discard, res.Body) }()
	return func() { res.Body.Close() }, nil
}
