package realtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"plaza/internal/bus"
	"plaza/internal/chat"
	"plaza/internal/plaza"
)

var (
	fanConns   = flag.Int("fanconns", 1000, "connections BenchmarkFanOut opens")
	fanProfile = flag.String("fanprofile", "", "directory BenchmarkFanOut writes the server's CPU profiles in (<transport>.cpu)")
)

// cpuProfile starts writing this process's CPU profile to path, or with path "" stops.
func cpuProfile(path string) error {
	if path == "" {
		pprof.StopCPUProfile()
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return pprof.StartCPUProfile(f) // the file is closed with the process
}

// publishFanOut publishes one event for BenchmarkFanOut's clients: a chat message in
// general ("ws") or a product update ("sse"), the size of those of make bench.
func publishFanOut(ctx context.Context, b bus.Bus, transport, n string) error {
	now := time.Now()
	var stream string
	var ev plaza.Event
	var err error
	switch transport {
	case "ws":
		stream = chat.Stream("general")
		ev, err = plaza.NewEvent(chat.EventMessage, plaza.NewID(), chat.Message{
			ID: plaza.NewID(), Room: "general", UserID: plaza.NewID(), UserName: "Bench User", Text: "bench", SentAt: now, ClientID: n,
		}, now)
	case "sse":
		stream = plaza.StreamCatalog
		ev, err = plaza.NewEvent("product.updated", plaza.NewID(), map[string]any{
			"id": plaza.NewID(), "name": "Realtime bench", "description": "updated by the bench", "price_cents": 100,
			"currency": "EUR", "category": "books", "subcategory": "fiction", "stock": n, "updated_at": now,
		}, now)
	default:
		return fmt.Errorf("unknown transport %q", transport)
	}
	if err != nil {
		return err
	}
	_, err = b.Publish(ctx, stream, ev)
	return err
}

// BenchmarkFanOut opens -fanconns WebSocket members of one room, or SSE subscribers of
// product updates, to a server in a process of its own (see idleConnection), and
// broadcasts b.N events to them, each once the one before has reached every client. An
// op is one event's fan-out, from publishing to the last delivery. It also reports the CPU
// time (user and system) per delivery of the server process and of this one, the
// clients': on a shared machine they vary far less than the wall time. Run it with
// -benchtime=200x or so.
func BenchmarkFanOut(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads CPU times from /proc")
	}
	for _, transport := range []string{"ws", "sse"} {
		b.Run(transport, func(b *testing.B) { fanOut(b, transport, *fanConns) })
	}
}

func fanOut(b *testing.B, transport string, n int) {
	base, pid := startServer(b, "serve")

	// Every client counts what it receives; the one that completes an event's fan-out
	// says so.
	var got, want atomic.Int64
	done := make(chan struct{}, 1)
	delivered := func() {
		if got.Add(1) == want.Load() {
			done <- struct{}{}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1}}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := openFanOut(ctx, client, base, transport, "user"+strconv.Itoa(i%100), delivered)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}

	post := func(path string) {
		res, err := http.Post(base+path, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("%s: %s", path, res.Status)
		}
	}
	publish := func(i int) { post("/publish?transport=" + transport + "&n=" + strconv.Itoa(i)) }
	wait := func(i int) {
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("event %d reached %d of %d deliveries", i, got.Load()-int64(i-1)*int64(n), n)
		}
	}
	// One event first, so that every client is known to be past its start.
	want.Store(int64(n))
	publish(0)
	wait(1)

	if *fanProfile != "" {
		post("/cpuprofile?path=" + url.QueryEscape(filepath.Join(*fanProfile, transport+".cpu")))
		defer post("/cpuprofile")
	}
	serverBefore, clientBefore := procTicks(b, pid), procTicks(b, os.Getpid())
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		want.Store(int64(i+1) * int64(n))
		publish(i)
		wait(i + 1)
	}
	b.StopTimer()
	serverAfter, clientAfter := procTicks(b, pid), procTicks(b, os.Getpid())
	perDelivery := func(ticks int64) float64 {
		return float64(ticks) * 1e4 / float64(int64(b.N)*int64(n)) // 100 ticks a second
	}
	b.ReportMetric(perDelivery(serverAfter-serverBefore), "server-µs/delivery")
	b.ReportMetric(perDelivery(clientAfter-clientBefore), "client-µs/delivery")
}

// openFanOut opens one client of BenchmarkFanOut, which calls delivered for each event it
// receives until ctx ends.
func openFanOut(ctx context.Context, client *http.Client, base, transport, user string, delivered func()) error {
	if transport == "ws" {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", &websocket.DialOptions{
			HTTPClient: client, HTTPHeader: http.Header{"X-User": {user}},
		})
		if err != nil {
			return err
		}
		c.SetReadLimit(1 << 20)
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","room":"general"}`)); err != nil {
			c.CloseNow()
			return err
		}
		if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"type":"joined"`) {
			c.CloseNow()
			return fmt.Errorf("join: %s %v", b, err)
		}
		// Read as make bench's generator does: into one buffer, with a context that never
		// ends (one that can costs the library a registration per read).
		go func() {
			defer c.CloseNow()
			var buf bytes.Buffer
			for {
				_, r, err := c.Reader(context.Background())
				if err == nil {
					buf.Reset()
					_, err = buf.ReadFrom(r)
				}
				if err != nil {
					return
				}
				if bytes.Contains(buf.Bytes(), []byte(`"type":"message"`)) {
					delivered()
				}
			}
		}()
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/events?types=product.updated", nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return fmt.Errorf("events: %s", res.Status)
	}
	go func() {
		defer res.Body.Close()
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				return
			}
			if bytes.HasPrefix(line, []byte("data: ")) {
				delivered()
			}
		}
	}()
	return nil
}

// procTicks is a process's CPU time, user and system, in clock ticks (1/100 s).
func procTicks(b *testing.B, pid int) int64 {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields are counted from the command name's closing parenthesis: utime and stime are
	// the 12th and 13th after it.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %s", pid, stat)
	}
	return u + s
}
