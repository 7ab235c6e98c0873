package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"plaza/internal/store/storetest"
)

// instance is one Plaza started in-process through run.
type instance struct {
	URL    string
	Addr   string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// addr receives the HTTP address once the server logs it.
	addr chan string
	sent bool
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if !b.sent {
		sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "http server listening" {
				b.addr <- l.Addr
				b.sent = true
				break
			}
		}
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startWithin only guards against a hang: start-up (migrations, the demo catalog, an admin's
// argon2id hash) under -race on a machine shared with other work can take a while.
const startWithin = 2 * time.Minute

// start runs `plaza serve` with env (on a loopback port of its own and a temp data dir unless
// env says otherwise) and waits until /readyz answers 200.
// clusterEnv is the setting of instances that act as one: a fresh PostgreSQL database,
// the Redis at redisURL, one signing key, the test admin, and no rate limit.
func clusterEnv(t *testing.T, redisURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL":         storetest.PostgresURL(t),
		"REDIS_URL":            redisURL,
		"PLAZA_JWT_SECRET":     "a shared signing key of at least 32 bytes",
		"PLAZA_ADMIN_EMAIL":    adminEmail,
		"PLAZA_ADMIN_PASSWORD": adminPassword,
		"PLAZA_RATE_LIMIT":     "0",
	}
}

func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	vars := map[string]string{
		"PLAZA_HTTP_ADDR": "127.0.0.1:0",
		"PLAZA_GRPC_ADDR": "127.0.0.1:0",
		"PLAZA_DATA_DIR":  t.TempDir(),
		"PLAZA_LOG_LEVEL": "warn",
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{addr: make(chan string, 1)}}
	// The listening line is logged at info; keep the level there so the test can find it.
	vars["PLAZA_LOG_LEVEL"] = "info"
	go func() {
		in.done <- run(ctx, []string{"plaza", "serve"}, func(k string) string { return vars[k] }, strings.NewReader(""), io.Discard, in.logs)
	}()
	t.Cleanup(func() { in.stop(t) })
	select {
	case in.Addr = <-in.logs.addr:
	case err := <-in.done:
		t.Fatalf("plaza exited before listening: %v\n%s", err, in.logs)
	case <-time.After(startWithin):
		t.Fatalf("plaza did not listen within %s\n%s", startWithin, in.logs)
	}
	in.URL = "http://" + in.Addr
	deadline := time.Now().Add(startWithin)
	for {
		res, err := http.Get(in.URL + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered 200 (last: %v)\n%s", err, in.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop cancels run's context and returns what run returned.
func (in *instance) stop(t *testing.T) error {
	t.Helper()
	in.cancel()
	select {
	case err, ok := <-in.done:
		if ok {
			close(in.done)
		}
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("plaza did not stop within 60s")
		return nil
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"plaza", "version"}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "plaza ") || !strings.Contains(out.String(), "go1.") || !strings.Contains(out.String(), "commit ") {
		t.Fatalf("version output %q", out.String())
	}
}

func TestConfigErrorsStopStartWithExitCode2(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, val string }{
		{"PLAZA_HTTP_ADDR", "no-port"},
		{"PLAZA_SHUTDOWN_TIMEOUT", "-5s"},
		{"PLAZA_ENV", "prod"},
		{"DATABASE_URL", "mysql://root:hunter2@db/plaza"},
		{"REDIS_URL", "memcached://u:hunter2@cache:11211"},
		// A scheme the settings accept but go-redis refuses is caught when the backends
		// open, and still named once: "REDIS_URL: host …", not "REDIS_URL: REDIS_URL …".
		{"REDIS_URL", "redis://u:hunter2@cache:6379/notadb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Loopback ports of the test's own: a backend error comes after the listeners
			// are bound, and the default :8080 may be taken by anything else running.
			env := map[string]string{"PLAZA_HTTP_ADDR": "127.0.0.1:0", "PLAZA_GRPC_ADDR": "127.0.0.1:0", "PLAZA_DATA_DIR": t.TempDir()}
			env[c.name] = c.val
			err := run(context.Background(), []string{"plaza", "serve"}, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
			if err == nil || !strings.HasPrefix(err.Error(), c.name+": ") || strings.Count(err.Error(), c.name) != 1 || exitCode(err) != 2 {
				t.Fatalf("got %v (exit %d), want a one-line error naming %s once with exit 2", err, exitCode(err), c.name)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("password leaked: %v", err)
			}
		})
	}
	err := run(context.Background(), []string{"plaza", "frobnicate"}, func(string) string { return "" }, nil, io.Discard, io.Discard)
	if exitCode(err) != 2 {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestServeHelpListsSettings(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"plaza", "serve", "--help"}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"PLAZA_HTTP_ADDR", "DATABASE_URL", "REDIS_URL", "PLAZA_JWT_SECRET", "PLAZA_SHUTDOWN_TIMEOUT", "PLAZA_DEBUG_ADDR"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("help lacks %s", v)
		}
	}
}

// TestHelpPrintsAndStops: every command's --help prints its usage once, to stdout, and
// does nothing else: no server starts, no data dir is created, no password is asked for,
// and the exit status is 0.
func TestHelpPrintsAndStops(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"serve", "--help"}, {"--http-addr", "127.0.0.1:0", "--help"},
		{"migrate", "--help"}, {"migrate", "up", "--help"},
		{"seed", "--help"}, {"seed", "--products", "10", "-h"},
		{"user", "--help"}, {"user", "create", "--help"}, {"user", "list", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir() + "/data"
			env := map[string]string{"PLAZA_DATA_DIR": dir}
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, append([]string{"plaza"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
			if err != nil || exitCode(err) == 2 {
				t.Fatalf("err %v", err)
			}
			if !strings.HasPrefix(out.String(), "Usage:") || strings.Count(out.String(), "Usage:") != 1 || errOut.Len() != 0 {
				t.Fatalf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("--help touched the data dir: %v", err)
			}
		})
	}
	var out bytes.Buffer
	run(context.Background(), []string{"plaza", "--help"}, func(string) string { return "" }, nil, &out, io.Discard)
	for _, cmd := range []string{"serve", "migrate", "seed", "user", "version"} {
		if !strings.Contains(out.String(), "\n  "+cmd+" ") {
			t.Errorf("plaza --help does not list %s:\n%s", cmd, out.String())
		}
	}
}

func TestServesProbesAndProblems(t *testing.T) {
	t.Parallel()
	in := start(t, nil)
	res, err := http.Get(in.URL + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Status string
		Checks map[string]struct{ Status string }
	}
	json.NewDecoder(res.Body).Decode(&rep)
	res.Body.Close()
	if res.StatusCode != 200 || rep.Status != "ok" || rep.Checks["store"].Status != "ok" || rep.Checks["cache"].Status != "ok" || rep.Checks["bus"].Status != "ok" {
		t.Fatalf("/api/health %d %+v", res.StatusCode, rep)
	}
	res, _ = http.Get(in.URL + "/api/nothing-here")
	res.Body.Close()
	if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown route: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("POST", in.URL+"/api/nothing-here", strings.NewReader(strings.Repeat("x", 2<<20)))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("2 MiB body: %d", res.StatusCode)
	}
	res, _ = http.Get(in.URL + "/metrics")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "go_goroutines") || !strings.Contains(string(body), "plaza_http_requests_total") {
		t.Fatal("metrics lack runtime or request metrics")
	}
	// gRPC is served on PLAZA_GRPC_ADDR, and start-up says where, once.
	if strings.Count(in.logs.String(), `"msg":"grpc server listening"`) != 1 {
		t.Fatalf("start-up does not say once where gRPC listens:\n%s", in.logs)
	}
}

// TestForcedShutdownIsAnError: a request that outlives the shutdown timeout makes run fail.
func TestForcedShutdownIsAnError(t *testing.T) {
	t.Parallel()
	in := start(t, map[string]string{"PLAZA_SHUTDOWN_TIMEOUT": "300ms"})
	c, err := net.Dial("tcp", in.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: plaza\r\n")
	time.Sleep(50 * time.Millisecond)
	err = in.stop(t)
	if err == nil || !strings.Contains(err.Error(), "did not finish") || exitCode(err) == 0 {
		t.Fatalf("forced shutdown returned %v", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("forced shutdown reported as plain cancellation")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("forced shutdown lost Shutdown's own error: %v", err)
	}
}

// TestMigrateCommand drives `plaza migrate status | up | down` against a fresh data dir.
func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PLAZA_DATA_DIR": t.TempDir()}
	migrate := func(sub string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"plaza", "migrate", sub}, func(k string) string { return env[k] }, nil, &out, io.Discard); err != nil {
			t.Fatalf("migrate %s: %v", sub, err)
		}
		return out.String()
	}
	if s := migrate("status"); !strings.Contains(s, "00001") || strings.Contains(s, "applied ") {
		t.Fatalf("fresh status:\n%s", s)
	}
	migrate("up")
	s := migrate("status")
	if strings.Contains(s, "pending") || !strings.Contains(s, "applied") {
		t.Fatalf("status after up:\n%s", s)
	}
	if out := migrate("down"); !strings.HasPrefix(out, "down") {
		t.Fatalf("down printed %q", out)
	}
	if s := migrate("status"); strings.Count(s, "pending") != 1 {
		t.Fatalf("status after one down:\n%s", s)
	}
	err := run(context.Background(), []string{"plaza", "migrate", "sideways"}, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if exitCode(err) != 2 {
		t.Fatalf("unknown migrate command: %v", err)
	}
}
