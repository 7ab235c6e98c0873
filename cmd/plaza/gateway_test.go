package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"plaza/internal/openapitest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/redistest"
	"plaza/internal/store/storetest"
)

// gatewayProc is one `plaza gateway` started in-process through run.
type gatewayProc struct {
	URL, GRPCAddr string
	cancel        context.CancelFunc
	done          chan struct{}
	err           error // what run returned, once done is closed
	logs          *lineLog
}

// lineLog keeps a process's log lines and finds the address a line announces.
type lineLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// addr returns the addr of the first line logged with msg, once there is one.
func (l *lineLog) addr(t *testing.T, msg string, exited <-chan struct{}) string {
	t.Helper()
	deadline := time.Now().Add(startWithin)
	for {
		sc := bufio.NewScanner(strings.NewReader(l.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == msg {
				return line.Addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("exited before %q\n%s", msg, l)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line within %s\n%s", msg, startWithin, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits until a line holds s (lines are written in batches).
func (l *lineLog) wait(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line says %q:\n%s", s, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startGateway(t *testing.T, env map[string]string, args ...string) *gatewayProc {
	t.Helper()
	vars := map[string]string{"PLAZA_GATEWAY_ADDR": "127.0.0.1:0", "PLAZA_GATEWAY_GRPC_ADDR": "127.0.0.1:0", "PLAZA_LOG_LEVEL": "info", "PLAZA_DATA_DIR": t.TempDir()}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gatewayProc{cancel: cancel, done: make(chan struct{}), logs: &lineLog{}}
	go func() {
		g.err = run(ctx, append([]string{"plaza", "gateway"}, args...), func(k string) string { return vars[k] }, strings.NewReader(""), io.Discard, g.logs)
		close(g.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(60 * time.Second):
			t.Error("gateway did not stop within 60s")
		}
	})
	g.GRPCAddr = g.logs.addr(t, "gateway grpc listening", g.done)
	g.URL = "http://" + g.logs.addr(t, "gateway listening", g.done)
	waitReady(t, g.URL)
	return g
}

// waitReady polls url's /readyz. A gateway's own /readyz is not the API's (it reports its
// pools, not Plaza's dependencies), so these polls bypass the OpenAPI validation.
func waitReady(t *testing.T, url string) {
	t.Helper()
	probe := &http.Client{Transport: openapitest.Unvalidated}
	deadline := time.Now().Add(startWithin)
	for {
		res, err := probe.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz never answered 200 (last: %v)", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// binaryInstance is a `plaza serve` in a process of its own, so that it can be killed.
type binaryInstance struct {
	URL, Addr string
	cmd       *exec.Cmd
	logs      *lineLog
}

func buildPlaza(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "plaza")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startBinary(t *testing.T, bin string, env map[string]string) *binaryInstance {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PLAZA_HTTP_ADDR=127.0.0.1:0", "PLAZA_GRPC_ADDR=127.0.0.1:0", "PLAZA_LOG_LEVEL=info", "PLAZA_DATA_DIR="+t.TempDir())
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	b := &binaryInstance{cmd: cmd, logs: &lineLog{}}
	cmd.Stderr = b.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	b.Addr = b.logs.addr(t, "http server listening", exited)
	b.URL = "http://" + b.Addr
	waitReady(t, b.URL)
	return b
}

// metric sums the samples of name whose labels contain every one of labels.
func metric(t *testing.T, url, name string, labels ...string) (float64, bool) {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

func served(t *testing.T, instanceURL string) float64 {
	v, _ := metric(t, instanceURL, "plaza_http_requests_total")
	return v
}

// load sends requests through the gateways from workers goroutines until stop is closed,
// and counts what failed.
type load struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	failures     []string
	wg           sync.WaitGroup
	stop         chan struct{}
}

func startLoad(workers int, do func(i int) (int, error)) *load {
	l := &load{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for i := w; ; i += workers {
				select {
				case <-l.stop:
					return
				default:
				}
				code, err := do(i)
				l.sent.Add(1)
				if err != nil || code >= 300 {
					l.failed.Add(1)
					l.mu.Lock()
					l.failures = append(l.failures, strconv.Itoa(code)+" "+errString(err))
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

func (l *load) end() { close(l.stop); l.wg.Wait() }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func getStatus(url string) (int, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func postStatus(url, body string) (int, error) {
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

const gatewayConfig = `# routes of the end-to-end test
routes:
  - name: limited
    path_prefix: /api/categories
    methods: [GET]
    limit: {rate: 0.05, burst: 6}
  - name: api
    path_prefix: /
    pool: instances
    timeout: 20s
`

// TestGatewayCluster is the proof on loopback: PostgreSQL, Redis, three
// instances (one a process of its own, to be killed) and two gateways.
func TestGatewayCluster(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t) // a Redis of its own: the registry must hold only this test's instances
	secret := "gateway-test-secret-0123456789abcdef"
	common := map[string]string{
		"DATABASE_URL": storetest.PostgresURL(t), "REDIS_URL": rs.URL(), "PLAZA_JWT_SECRET": secret,
		"PLAZA_DISCOVERY_TTL": "3s",
	}
	inst := func(extra map[string]string) map[string]string {
		m := map[string]string{"PLAZA_ADMIN_EMAIL": adminEmail, "PLAZA_ADMIN_PASSWORD": adminPassword, "PLAZA_RATE_LIMIT": "0",
			"PLAZA_TRUSTED_PROXIES": "127.0.0.1/32"}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	bin := buildPlaza(t)
	a := start(t, inst(nil))
	b := start(t, inst(nil))
	c := startBinary(t, bin, inst(nil))

	cfgFile := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfgFile, []byte(gatewayConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	gwEnv := map[string]string{"PLAZA_RATE_LIMIT": "0"}
	for k, v := range common {
		gwEnv[k] = v
	}
	gw1 := startGateway(t, gwEnv, "--config", cfgFile)
	gw2 := startGateway(t, gwEnv, "--config", cfgFile)
	gws := []*gatewayProc{gw1, gw2}
	for _, g := range gws {
		for _, in := range []string{a.Addr, b.Addr, c.Addr} {
			waitMetric(t, g.URL, "plaza_gateway_upstream_available", 1, `pool="instances"`, `upstream="`+in+`"`)
		}
	}

	// `plaza instances` lists the three, ready.
	var out bytes.Buffer
	if err := run(t.Context(), []string{"plaza", "instances"}, func(k string) string { return common[k] }, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), " ready"); n != 3 || !strings.Contains(out.String(), c.Addr) {
		t.Fatalf("plaza instances:\n%s", out.String())
	}

	t.Run("traffic spreads across instances", func(t *testing.T) {
		before := []float64{served(t, a.URL), served(t, b.URL), served(t, c.URL)}
		for i := range 300 {
			if code, err := getStatus(gws[i%2].URL + "/api/products?limit=1"); code != 200 {
				t.Fatalf("request %d: %d %v", i, code, err)
			}
		}
		for i, u := range []string{a.URL, b.URL, c.URL} {
			// Each of three gets a share; a tenth of the 300 leaves room for a balancer's luck.
			if got := served(t, u) - before[i]; got < 30 {
				t.Errorf("instance %d served %v of 300 requests", i, got)
			}
		}
	})

	t.Run("a forged token is refused at the edge", func(t *testing.T) {
		forged := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "plaza", "aud": "plaza-api", "sub": "someone",
			"jti": "x", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
		forged.Header["kid"] = "whatever"
		tok, _ := forged.SignedString([]byte("not the secret, not the secret, not it"))
		req, _ := http.NewRequest("GET", gw1.URL+"/api/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		// An instance's answer carries its security headers; the gateway's refusal does not.
		if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") == "" || res.Header.Get("X-Frame-Options") != "" {
			t.Fatalf("forged token: %d %v", res.StatusCode, res.Header)
		}
		rpc := dialGRPC(t, gw2.GRPCAddr, nil)
		_, err = rpc.users.GetMe(as(t, tok), &plazav1.GetMeRequest{})
		wantCode(t, "forged token over gRPC", err, codes.Unauthenticated)
	})

	admin := login(t, gw1.URL)

	t.Run("gRPC and SSE through the gateway", func(t *testing.T) {
		rpc := dialGRPC(t, gw2.GRPCAddr, nil)
		page, err := rpc.products.ListProducts(as(t, ""), &plazav1.ListProductsRequest{PageSize: 2})
		if err != nil || len(page.Products) != 2 {
			t.Fatalf("ListProducts through the gateway: %v %v", page, err)
		}
		if _, err := rpc.users.GetMe(as(t, admin), &plazav1.GetMeRequest{}); err != nil {
			t.Fatalf("GetMe with a valid token through the gateway: %v", err)
		}
		events := openEvents(t, gw2.URL, "?types=product.created", nil)
		createProduct(t, gw1.URL, admin, "Gateway Lamp")
		if ev := events.next(); ev.Event != "product.created" || !strings.Contains(ev.Data, "Gateway Lamp") {
			t.Fatalf("event through the gateway: %+v", ev)
		}
	})

	t.Run("chat through gateway 1 reaches a client of gateway 2 on another instance", func(t *testing.T) {
		ann := registerAndSignIn(t, gw1.URL, "Ann")
		bob := registerAndSignIn(t, gw2.URL, "Bob")
		instances := []string{a.URL, b.URL, c.URL}
		holder := func() int { // the instance whose open connections rose
			for i, u := range instances {
				if v, _ := metric(t, u, "plaza_realtime_connections", `transport="ws"`); v > 0 {
					return i
				}
			}
			return -1
		}
		wa := connect(t, gw1.URL, ann)
		wa.send(`{"type":"join","room":"general"}`)
		wa.next("joined")
		first := holder()
		if first < 0 {
			t.Fatal("no instance counts the WebSocket of gateway 1")
		}
		var wb *wsConn
		for range 30 { // each try lands elsewhere with probability 2/3
			wb = connect(t, gw2.URL, bob)
			wb.send(`{"type":"join","room":"general"}`)
			wb.next("joined")
			n := 0
			for _, u := range instances {
				if v, _ := metric(t, u, "plaza_realtime_connections", `transport="ws"`); v > 0 {
					n++
				}
			}
			if n == 2 {
				break
			}
			wb.c.CloseNow()
			wb = nil
		}
		if wb == nil {
			t.Fatal("gateway 2 never placed the second socket on another instance")
		}
		wa.send(`{"type":"message","room":"general","text":"through two gateways","client_id":"g1"}`)
		if m := wb.next("message").msg(); m.Text != "through two gateways" || m.UserName != "Ann" {
			t.Fatalf("bob got %+v", m)
		}
	})

	t.Run("one rate limit across both gateways", func(t *testing.T) {
		ok, limited := 0, 0
		for i := range 12 {
			res, err := http.Get(gws[i%2].URL + "/api/categories")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			switch res.StatusCode {
			case 200:
				ok++
			case 429:
				limited++
				if res.Header.Get("Retry-After") == "" || res.Header.Get("RateLimit-Limit") != "6" || res.Header.Get("RateLimit-Remaining") != "0" {
					t.Fatalf("429 headers: %v", res.Header)
				}
			default:
				t.Fatalf("categories: %d", res.StatusCode)
			}
		}
		// Burst 6 at one request per 20 s: counted per gateway, 12 would pass.
		if ok > 7 || limited < 5 {
			t.Fatalf("%d passed and %d were limited of 12 alternating between the gateways", ok, limited)
		}
	})

	t.Run("killing an instance mid-load loses no idempotent request", func(t *testing.T) {
		l := startLoad(6, func(i int) (int, error) { return getStatus(gws[i%2].URL + "/api/products?limit=2") })
		time.Sleep(time.Second)
		killed := time.Now()
		c.cmd.Process.Kill()
		// It leaves both gateways' pools (ejected or failing its checks) within the 2 s; the
		// bound is doubled for a loaded machine, and the measured time logged.
		var left time.Duration
		for _, g := range gws {
			waitMetric(t, g.URL, "plaza_gateway_upstream_available", 0, `pool="instances"`, `upstream="`+c.Addr+`"`)
			left = max(left, time.Since(killed))
		}
		t.Logf("the killed instance left both pools after %v", left)
		if left > 4*time.Second {
			t.Errorf("the killed instance left the pools after %v, want within 2 s", left)
		}
		time.Sleep(time.Second)
		l.end()
		if l.failed.Load() > 0 {
			t.Fatalf("%d of %d requests failed: %v", l.failed.Load(), l.sent.Load(), l.failures[:min(5, len(l.failures))])
		}
		t.Logf("%d requests, none lost", l.sent.Load())
	})

	t.Run("a new instance joins and a draining one gets no new requests", func(t *testing.T) {
		d := start(t, inst(nil))
		for _, g := range gws {
			waitMetric(t, g.URL, "plaza_gateway_upstream_available", 1, `pool="instances"`, `upstream="`+d.Addr+`"`)
		}
		before := served(t, d.URL)
		for i := range 60 {
			if code, err := getStatus(gws[i%2].URL + "/api/products?limit=1"); code != 200 {
				t.Fatalf("request %d: %d %v", i, code, err)
			}
		}
		if served(t, d.URL) == before {
			t.Fatal("the new instance got none of 60 requests")
		}
		// Drain b under a load of reads and of POSTs, which are never retried once sent:
		// each one answered shows the gateway did not send it to the draining instance.
		query := `{"query":"{ categories { path } }"}`
		l := startLoad(4, func(i int) (int, error) {
			if i%2 == 0 {
				return postStatus(gws[i/2%2].URL+"/graphql", query)
			}
			return getStatus(gws[i/2%2].URL + "/api/products?limit=1")
		})
		time.Sleep(500 * time.Millisecond)
		if err := b.stop(t); err != nil {
			t.Errorf("instance b's drain: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
		l.end()
		if l.failed.Load() > 0 {
			t.Fatalf("%d of %d requests failed during the drain: %v\n%s", l.failed.Load(), l.sent.Load(), l.failures[:min(5, len(l.failures))],
				exchangeFailures(gws))
		}
	})
}

// exchangeFailures are the gateways' log lines about failed upstream exchanges.
func exchangeFailures(gws []*gatewayProc) string {
	var out []string
	for _, g := range gws {
		for _, line := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(line, "upstream exchange failed") {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "\n")
}

// waitMetric polls until the gateway's metric (summed over matching series) equals want;
// a series that is gone counts as 0.
func waitMetric(t *testing.T, url, name string, want float64, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, _ := metric(t, url, name, labels...)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v at %s is %v, want %v", name, labels, url, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGatewayReloadsOnSIGHUP: SIGHUP applies a changed --config file without a restart;
// a broken file is refused with its line and field in the log, and the running
// configuration stays.
func TestGatewayReloadsOnSIGHUP(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(upstream.Close)
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("routes:\n  - name: private\n    path_prefix: /\n    auth: required\n")
	g := startGateway(t, map[string]string{"PLAZA_DISCOVERY": "static:" + strings.TrimPrefix(upstream.URL, "http://"),
		"PLAZA_JWT_SECRET": "reload-test-secret-0123456789abcdef"}, "--config", file)
	// The upstream here is a stand-in, not Plaza: its path is no API operation.
	plain := &http.Client{Transport: openapitest.Unvalidated}
	status := func() int {
		res, err := plain.Get(g.URL + "/anything")
		code := 0
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			code = res.StatusCode
		}
		if err != nil {
			t.Fatalf("%v\n%s", err, g.logs)
		}
		return code
	}
	if code := status(); code != 401 {
		t.Fatalf("auth required: %d", code)
	}
	hup := func(wantLog string) {
		t.Helper()
		before := strings.Count(g.logs.String(), wantLog)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(g.logs.String(), wantLog) == before {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after SIGHUP:\n%s", wantLog, g.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	write("routes:\n  - name: private\n    path_prefix: /\n    auth: sometimes\n")
	hup("configuration not reloaded")
	if !strings.Contains(g.logs.String(), `gateway.yaml:4: routes[0].auth`) {
		t.Fatalf("the refusal does not name the line and field:\n%s", g.logs)
	}
	if code := status(); code != 401 {
		t.Fatalf("after a bad reload the old configuration must stay: %d", code)
	}
	write("routes:\n  - name: public\n    path_prefix: /\n")
	hup("configuration reloaded")
	if code := status(); code != 200 {
		t.Fatalf("after the reload: %d", code)
	}
}

// standIn is an upstream that is not Plaza, so the gateway's own behaviour is seen alone:
// /readyz passes the gateway's health checks, /echo answers what the gateway sent it, /slow answers after a second, /sse streams an
// event every 50 ms (numbered from 0) and /ws echoes WebSocket messages.
func standIn(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"forwarded": r.Header.Values("Forwarded"),
			"xff": r.Header.Values("X-Forwarded-For"), "host": r.Host})
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
			w.Write([]byte("late"))
		}
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// h2cClient speaks only HTTP/2 with prior knowledge, no TLS: what a load balancer or
// mesh in front of the gateway speaks to it.
func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestGatewayHTTP2AndStreams: the gateway's HTTP listener serves HTTP/1.1 and cleartext
// HTTP/2 side by side; a route's timeout cuts a slow exchange but never a WebSocket or
// an event stream, whichever protocol carries it and whether or not the client said it
// wants a stream; and the instance is told the client's address in Forwarded and
// X-Forwarded-For, whatever the client sent in them.
func TestGatewayHTTP2AndStreams(t *testing.T) {
	t.Parallel()
	up := standIn(t)
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(file, []byte("routes:\n  - {name: hurried, path_prefix: /, timeout: 300ms}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, map[string]string{"PLAZA_DISCOVERY": "static:" + strings.TrimPrefix(up.URL, "http://"),
		"PLAZA_JWT_SECRET": "h2-test-secret-0123456789abcdef0123", "PLAZA_RATE_LIMIT": "0"}, "--config", file)
	h1 := &http.Client{Transport: openapitest.Unvalidated, Timeout: 10 * time.Second}
	h2 := h2cClient()
	t.Cleanup(h2.CloseIdleConnections)
	clients := []struct {
		name   string
		c      *http.Client
		protoM int
	}{{"HTTP/1.1", h1, 1}, {"HTTP/2", h2, 2}}

	t.Run("both protocols on one listener", func(t *testing.T) {
		for _, cl := range clients {
			res, err := cl.c.Get(g.URL + "/echo")
			if err != nil {
				t.Fatalf("%s: %v", cl.name, err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.ProtoMajor != cl.protoM {
				t.Fatalf("%s: %d served as %s", cl.name, res.StatusCode, res.Proto)
			}
		}
		// The gateway's own answers too.
		res, err := h2.Get(g.URL + "/readyz")
		if err != nil || res.StatusCode != 200 || res.ProtoMajor != 2 {
			t.Fatalf("/readyz over HTTP/2: %v %v", res, err)
		}
		res.Body.Close()
	})

	t.Run("the route timeout cuts a slow exchange", func(t *testing.T) {
		for _, cl := range clients {
			res, err := cl.c.Get(g.URL + "/slow")
			if err != nil {
				t.Fatalf("%s: %v", cl.name, err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusGatewayTimeout || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s: a second-long answer on a 300ms route: %d %s", cl.name, res.StatusCode, res.Header.Get("Content-Type"))
			}
		}
	})

	t.Run("an event stream outlives the route timeout", func(t *testing.T) {
		for _, cl := range clients {
			for _, accept := range []string{"text/event-stream", ""} {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", g.URL+"/sse", nil)
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				stream := &http.Client{Transport: cl.c.Transport} // no client timeout: it is a stream
				res, err := stream.Do(req)
				if err != nil {
					t.Fatalf("%s, Accept %q: %v", cl.name, accept, err)
				}
				if res.ProtoMajor != cl.protoM {
					t.Fatalf("%s: served as %s", cl.name, res.Proto)
				}
				// Event 20 comes a second in: more than three route timeouts.
				lines := bufio.NewScanner(res.Body)
				last := ""
				for last != "data: 20" && lines.Scan() {
					last = lines.Text()
				}
				res.Body.Close()
				if last != "data: 20" {
					t.Fatalf("%s, Accept %q: the stream ended after %q: %v", cl.name, accept, last, lines.Err())
				}
			}
		}
	})

	t.Run("a WebSocket outlives the route timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.URL, "http")+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: openapitest.Unvalidated}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		for i := range 10 { // a second in all
			msg := strconv.Itoa(i)
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
				t.Fatalf("echo %d: %q %v", i, got, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("Forwarded and X-Forwarded-For name the client, whatever it sent", func(t *testing.T) {
		for _, cl := range clients {
			req, _ := http.NewRequest("GET", g.URL+"/echo", nil)
			req.Host = "shop.example,for=198.51.100.2" // net/http accepts it; unquoted it would forge an element
			req.Header.Set("Forwarded", "for=198.51.100.1")
			req.Header.Set("X-Forwarded-For", "198.51.100.1")
			res, err := cl.c.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", cl.name, err)
			}
			var got struct {
				Forwarded, XFF []string
				Host           string
			}
			json.NewDecoder(res.Body).Decode(&got)
			res.Body.Close()
			want := `for=127.0.0.1;host="shop.example,for=198.51.100.2";proto=http`
			if len(got.Forwarded) != 1 || got.Forwarded[0] != want || len(got.XFF) != 1 || got.XFF[0] != "127.0.0.1" || got.Host != req.Host {
				t.Fatalf("%s: the instance got Forwarded %q, X-Forwarded-For %q, Host %q; want %s, 127.0.0.1, %s", cl.name, got.Forwarded, got.XFF, got.Host, want, req.Host)
			}
		}
	})
}

// clientAt is a client whose connections come from ip, a loopback address of its own
// (127.0.0.0/8 is all local on Linux): to a gateway, one client among others.
func clientAt(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestGatewayRateLimitsWithoutRedis: the per-client limit is one across gateways through
// Redis; while Redis is down each gateway limits on its own (never a 5xx, never a wait on
// Redis), says so in its log and metrics, and shares the limit again once Redis is back.
func TestGatewayRateLimitsWithoutRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t) // one of its own, to kill and restart
	up := standIn(t)
	const burst = 4
	env := map[string]string{"PLAZA_DISCOVERY": "static:" + strings.TrimPrefix(up.URL, "http://"), "REDIS_URL": rs.URL(),
		"PLAZA_JWT_SECRET": "limit-test-secret-0123456789abcdef0", "PLAZA_RATE_LIMIT": "0.05", "PLAZA_RATE_BURST": strconv.Itoa(burst)}
	gw1, gw2 := startGateway(t, env), startGateway(t, env)

	// get asks gw for /echo as client c, and checks what any answer must be: 200, or a 429
	// problem with Retry-After and RateLimit-*, within a second.
	get := func(c *http.Client, gw *gatewayProc) int {
		t.Helper()
		start := time.Now()
		res, err := c.Get(gw.URL + "/echo")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if took := time.Since(start); took > time.Second {
			t.Fatalf("answered after %v", took)
		}
		h := res.Header
		if h.Get("RateLimit-Limit") != strconv.Itoa(burst) || h.Get("RateLimit-Remaining") == "" || h.Get("RateLimit-Reset") == "" {
			t.Fatalf("%d without RateLimit-* headers: %v", res.StatusCode, h)
		}
		switch res.StatusCode {
		case 200:
		case 429:
			if h.Get("Retry-After") == "" || h.Get("RateLimit-Remaining") != "0" || h.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("429 headers: %v", h)
			}
		default:
			t.Fatalf("status %d", res.StatusCode)
		}
		return res.StatusCode
	}
	// spend makes burst requests as c on gw, all of which must pass.
	spend := func(c *http.Client, gw *gatewayProc) {
		t.Helper()
		for i := range burst {
			if code := get(c, gw); code != 200 {
				t.Fatalf("request %d of the burst: %d", i+1, code)
			}
		}
	}
	local := func(gw *gatewayProc) float64 {
		v, _ := metric(t, gw.URL, "plaza_gateway_rate_limit_local")
		return v
	}
	fallbacks := func(gw *gatewayProc) float64 {
		v, _ := metric(t, gw.URL, "plaza_gateway_rate_limit_fallbacks_total")
		return v
	}

	t.Run("one limit across gateways through Redis", func(t *testing.T) {
		c := clientAt(t, "127.0.0.2")
		spend(c, gw1)
		if code := get(c, gw2); code != 429 {
			t.Fatalf("after its burst on gateway 1, the client got %d on gateway 2", code)
		}
		if other := get(clientAt(t, "127.0.0.3"), gw2); other != 200 {
			t.Fatalf("another client was limited too: %d", other)
		}
		for _, gw := range []*gatewayProc{gw1, gw2} {
			if local(gw) != 0 || fallbacks(gw) != 0 {
				t.Fatalf("%s counts locally with Redis up", gw.URL)
			}
		}
	})

	rs.Kill()
	t.Run("with Redis down each gateway limits on its own and says so", func(t *testing.T) {
		c := clientAt(t, "127.0.0.4")
		for _, gw := range []*gatewayProc{gw1, gw2} {
			spend(c, gw) // each gateway allows the burst: it counts alone
			if code := get(c, gw); code != 429 {
				t.Fatalf("after the local burst: %d", code)
			}
			if local(gw) != 1 || fallbacks(gw) != 1 {
				t.Fatalf("plaza_gateway_rate_limit_local %v, _fallbacks_total %v; want 1, 1", local(gw), fallbacks(gw))
			}
			gw.logs.wait(t, "Redis cannot answer; rate limits are now counted by this gateway alone")
		}
	})

	rs.Restart()
	t.Run("with Redis back the limit is shared again", func(t *testing.T) {
		// The first request after Redis returns finds it; until then a probe may still be
		// counted locally (a pooled connection to the old server fails first).
		probe := clientAt(t, "127.0.0.5")
		for _, gw := range []*gatewayProc{gw1, gw2} {
			deadline := time.Now().Add(10 * time.Second)
			for local(gw) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%s still counts locally 10s after Redis returned:\n%s", gw.URL, gw.logs)
				}
				get(probe, gw)
				time.Sleep(50 * time.Millisecond)
			}
			gw.logs.wait(t, "Redis answers again; rate limits are shared by every gateway again")
		}
		c := clientAt(t, "127.0.0.6")
		spend(c, gw2)
		if code := get(c, gw1); code != 429 {
			t.Fatalf("after its burst on gateway 2, the client got %d on gateway 1", code)
		}
	})
}
