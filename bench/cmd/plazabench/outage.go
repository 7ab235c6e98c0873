package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// outageIDs is the size of the hot set the Redis outage scenario reads: a shop's most
// viewed products, all cached while Redis is up.
const outageIDs = 200

// recoveryLimit is how long the harness waits for a cache hit after Redis returns.
const recoveryLimit = 30 * time.Second

// Recovery is how long Plaza took to serve from the cache again once Redis was back.
type Recovery struct {
	// After is from the restarted redis-server answering PING to the first answer with
	// X-Cache: HIT; zero when none came within Waited.
	After  time.Duration
	Waited time.Duration
}

// startRedis starts a redis-server of the harness's own on addr, without persistence, and
// waits until it answers PING; it returns the moment it did.
func (h *harness) startRedis(ctx context.Context, addr, dir string) (*proc, time.Time, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, time.Time{}, errors.New("redis-server is not on PATH")
	}
	host, port, _ := net.SplitHostPort(addr)
	p, err := h.ps.start("redis-server "+addr, bin,
		[]string{"--port", port, "--bind", host, "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir},
		minimalEnv(), filepath.Join(dir, "redis-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".log"))
	if err != nil {
		return nil, time.Time{}, err
	}
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c.Ping(ctx).Err() == nil {
			return p, time.Now(), nil
		}
		if err := p.alive(); err != nil {
			return p, time.Time{}, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = p.stop(5 * time.Second)
			return p, time.Time{}, fmt.Errorf("redis-server on %s does not answer PING", addr)
		}
		time.Sleep(time.Millisecond)
	}
}

// measureOutage is issue 11's scenario, on PostgreSQL + Redis: a headline Plaza on the
// run's database and a redis-server of the harness's own (the run's shared Redis is never
// stopped), whose hot set is read with Redis up, from the moment Redis is killed, and
// from the moment it answers again, while a poller times the first cache hit.
func (h *harness) measureOutage(ctx context.Context, backendEnv, ids []string, dir string, pids func() []int) ([]ScenarioResult, *Recovery, error) {
	const request = "GET /api/products/{id}, 200 ids in turn"
	rows := []ScenarioResult{
		{Key: scOutageHealthy, Name: "(m) hot set, Redis up", Request: request,
			Note: "a headline Plaza of its own on this run's database and a redis-server the harness starts for it"},
		{Key: scOutage, Name: "(m) hot set, Redis killed", Request: request,
			Note: "measured from the moment redis-server was killed (SIGKILL), no warm-up"},
		{Key: scOutageBack, Name: "(m) hot set, Redis back", Request: request,
			Note: "measured from the moment the restarted redis-server (empty) answered PING, no warm-up"},
	}
	skip := func(err error) ([]ScenarioResult, *Recovery, error) {
		for i := range rows {
			rows[i].Skip = err.Error()
		}
		h.logf("redis outage: not measured: %v", err)
		return rows, nil, nil
	}
	if len(ids) == 0 {
		return skip(errors.New("no product ids"))
	}
	hot := ids[:min(outageIDs, len(ids))]
	hotFile := filepath.Join(dir, "hot.txt")
	if err := os.WriteFile(hotFile, []byte(strings.Join(hot, "\n")+"\n"), 0o644); err != nil {
		return rows, nil, err
	}
	for i := range rows {
		rows[i].Request = fmt.Sprintf("GET /api/products/{id}, %d ids in turn", len(hot))
	}
	addr, err := freeAddr()
	if err != nil {
		return rows, nil, err
	}
	rd, _, err := h.startRedis(ctx, addr, dir)
	if err != nil {
		return skip(err)
	}
	defer func() { _ = rd.stop(5 * time.Second) }()
	env := slices.DeleteFunc(slices.Clone(backendEnv), func(kv string) bool { return strings.HasPrefix(kv, "REDIS_URL=") })
	env = append(append(env, headlineEnv...), "REDIS_URL=redis://"+addr+"/0")
	srv, err := h.startPlaza(env, "redis outage")
	if err != nil {
		return rows, nil, err
	}
	defer func() { _ = srv.p.stop(30 * time.Second) }() // on the early ways out
	if _, err := waitReady(ctx, srv.p, srv.base+"/readyz", srv.p.started, time.Minute); err != nil {
		return rows, nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if err := (api{base: srv.base, client: client}).call(ctx, http.MethodGet, "/api/products/"+hot[0], "", nil, nil); err != nil {
		return skip(err)
	}
	l := load{url: srv.base + "/", script: "ids.lua", args: []string{hotFile, strconv.Itoa(h.o.threads)}}
	ours := func() []int { return append(pids(), srv.p.pid(), rd.pid()) }
	cold := h.wrk
	cold.warmup = 0

	h.logf("%s", rows[0].Name)
	up, err := h.wrk.measure(ctx, l, ours)
	if err != nil {
		return rows, nil, fmt.Errorf("%s: %w", rows[0].Name, err)
	}
	rows[0].Result = &up

	h.logf("%s", rows[1].Name)
	rd.kill()
	down, err := cold.measure(ctx, l, func() []int { return append(pids(), srv.p.pid()) })
	if err == nil {
		err = srv.p.alive()
	}
	if err != nil {
		return rows, nil, fmt.Errorf("%s: %w", rows[1].Name, err)
	}
	rows[1].Result = &down

	h.logf("%s", rows[2].Name)
	rd, back, err := h.startRedis(ctx, addr, dir)
	if err != nil {
		return rows, nil, fmt.Errorf("restarting redis-server: %w", err)
	}
	rec := &Recovery{Waited: recoveryLimit}
	polled := make(chan error, 1)
	go func() {
		d, err := firstHit(ctx, client, srv.base+"/api/products/"+hot[0], back, recoveryLimit)
		rec.After = d
		polled <- err
	}()
	again, err := cold.measure(ctx, l, ours)
	if perr := <-polled; err == nil {
		err = perr
	}
	if err == nil {
		err = srv.p.alive()
	}
	if err != nil {
		return rows, nil, fmt.Errorf("%s: %w", rows[2].Name, err)
	}
	rows[2].Result = &again
	// A server that cannot stop after an outage is a finding too.
	t0 := time.Now()
	if err := srv.p.stop(30 * time.Second); err != nil {
		return rows, rec, fmt.Errorf("after the outage: %w; its warnings: %s", err, strings.Join(logWarnings(srv.p.logPath, 3), "; "))
	}
	h.logf("the outage's Plaza stopped in %s", time.Since(t0).Round(time.Millisecond))
	return rows, rec, nil
}

// firstHit reads u every few milliseconds until an answer carries X-Cache: HIT and
// returns the time from since; zero when none did within limit.
func firstHit(ctx context.Context, client *http.Client, u string, since time.Time, limit time.Duration) (time.Duration, error) {
	for time.Since(since) < limit {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.Header.Get("X-Cache") == "HIT" {
				return time.Since(since), nil
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, nil
}
