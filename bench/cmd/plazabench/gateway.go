package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// gatewayEnv is what `plaza gateway` takes from the backend's environment: production,
// the instances' signing keys and, on PostgreSQL + Redis, their Redis (the shared rate
// limit and the revocation list).
var gatewayEnv = []string{"PLAZA_ENV", "PLAZA_JWT_SECRET", "REDIS_URL"}

// startGateway starts `plaza gateway` in front of up alone, with a static registry naming
// it, and the setting's log level and rate limit (those of the server behind it).
func (h *harness) startGateway(ctx context.Context, backendEnv, setting []string, up plaza, tag string) (*proc, string, error) {
	env := minimalEnv()
	for _, kv := range backendEnv {
		if k, _, _ := strings.Cut(kv, "="); slices.Contains(gatewayEnv, k) {
			env = append(env, kv)
		}
	}
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, "", err
	}
	httpAddr, grpcAddr := addrs[0], addrs[1]
	env = append(append(env, setting...), "PLAZA_DISCOVERY=static:"+up.http+"="+up.grpc,
		"PLAZA_GATEWAY_ADDR="+httpAddr, "PLAZA_GATEWAY_GRPC_ADDR="+grpcAddr)
	p, err := h.ps.start("gateway "+tag, h.bins.plaza, []string{"gateway"}, env, filepath.Join(h.tmp, "gateway-"+tag+".log"))
	if err != nil {
		return nil, "", err
	}
	base := "http://" + httpAddr
	// Ready once a health check has found the instance.
	if _, err := waitReady(ctx, p, base+"/readyz", p.started, 30*time.Second); err != nil {
		return p, base, err
	}
	return p, base, nil
}

// measureGateway measures the product of (b) through `plaza gateway` and direct (issue 17)
// on the headline server and then on the tuned one, each with a gateway of its setting in
// front. Per setting, in one pass: direct and through the gateway at the run's
// connections (the throughput ratio), then both at one connection, where queueing does
// not hide what the extra hop adds to a request's latency.
func (h *harness) measureGateway(ctx context.Context, fl *fleet, backendEnv []string, hot string, pids func() []int) ([]ScenarioResult, error) {
	path := "/api/products/" + hot
	edge := "no Redis: the gateway limits on its own and checks token signatures only"
	if slices.ContainsFunc(backendEnv, func(kv string) bool { return strings.HasPrefix(kv, "REDIS_URL=") }) {
		edge = "the gateway's limiter (GCRA) and revocation list in the run's Redis"
	}
	rows := []ScenarioResult{
		{Key: scGatewayDirect, Name: "(l) cached GET, direct", Request: "GET /api/products/{id}, the id of (b), to Plaza",
			Note: "the pass's direct reference, measured just before the next row"},
		{Key: scGateway, Name: "(l) cached GET through the gateway", Request: "the same, to `plaza gateway` in front of that Plaza",
			Note: "static registry naming the one server; the gateway at the server's setting (access log, limiter); " + edge},
		{Key: scGatewayDirect1, Name: "(l) direct, 1 connection", Request: "GET /api/products/{id}, the id of (b), to Plaza", Conns: 1,
			Note: "wrk with 1 thread and 1 connection"},
		{Key: scGateway1, Name: "(l) through the gateway, 1 connection", Request: "the same, to the gateway", Conns: 1,
			Note: "wrk with 1 thread and 1 connection"},
		{Key: scBareProxy, Name: "(l) cached GET through a bare ReverseProxy", Request: "the same, to bench/baseline -proxy in front of that Plaza",
			Note: "net/http/httputil.ReverseProxy with a pool of idle connections and nothing else (no log, limiter, balancing, retries): the floor under a Go gateway on this machine"},
	}
	skip := func(err error) []ScenarioResult {
		for i := range rows {
			rows[i].Result, rows[i].Tuned, rows[i].Skip = nil, nil, err.Error()
		}
		h.logf("gateway: not measured: %v", err)
		return rows
	}
	if hot == "" {
		return skip(fmt.Errorf("no product ids")), nil
	}
	one := h.wrk
	one.threads, one.conns = 1, 1
	for _, tuned := range []bool{false, true} {
		k := serverKey{tuned: tuned}
		s, err := fl.get(ctx, k)
		if err != nil {
			return rows, err
		}
		setting := headlineEnv
		if tuned {
			setting = tunedEnv
		}
		gw, base, err := h.startGateway(ctx, backendEnv, setting, s, k.tag())
		if err == nil {
			err = api{base: base, client: &http.Client{Timeout: 10 * time.Second}}.call(ctx, http.MethodGet, path, "", nil, nil)
		}
		if err != nil {
			if gw != nil {
				_ = gw.stop(30 * time.Second)
			}
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
			return skip(fmt.Errorf("the gateway (%s): %w", k.tag(), err)), nil
		}
		bare, bareBase, err := h.startBareProxy(ctx, s, k.tag())
		if err != nil {
			_ = gw.stop(30 * time.Second)
			if bare != nil {
				_ = bare.stop(10 * time.Second)
			}
			return rows, fmt.Errorf("the bare proxy (%s): %w", k.tag(), err)
		}
		withGW := func() []int { return append(pids(), gw.pid(), bare.pid()) }
		for i, m := range []struct {
			w   wrkRunner
			url string
		}{{h.wrk, s.base + path}, {h.wrk, base + path}, {one, s.base + path}, {one, base + path}, {h.wrk, bareBase + path}} {
			h.logf("%s, %s", rows[i].Name, k.tag())
			out, err := m.w.measure(ctx, load{url: m.url, script: "get.lua"}, withGW)
			if err == nil {
				err = gw.alive()
			}
			if err == nil {
				err = bare.alive()
			}
			if err != nil {
				_ = gw.stop(30 * time.Second)
				_ = bare.stop(10 * time.Second)
				return rows, fmt.Errorf("%s (%s): %w", rows[i].Name, k.tag(), err)
			}
			if tuned {
				rows[i].Tuned = &out
			} else {
				rows[i].Result = &out
			}
			// Errors through the gateway come with what its log says about them.
			if i%2 == 1 && out.ErrorCount() > 0 {
				if say := logWarnings(gw.logPath, 3); len(say) > 0 {
					rows[i].Note += fmt.Sprintf("; %s gateway log: %s", k.tag(), strings.Join(say, "; "))
				}
			}
		}
		_ = bare.stop(10 * time.Second)
		if err := gw.stop(30 * time.Second); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// startBareProxy starts bench/baseline as a bare httputil.ReverseProxy in front of up.
func (h *harness) startBareProxy(ctx context.Context, up plaza, tag string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := h.ps.start("bare proxy "+tag, h.bins.baseline,
		[]string{"-addr", addr, "-lifetime", (h.o.timeout + time.Minute).String(), "-proxy", up.base},
		minimalEnv(), filepath.Join(h.tmp, "bareproxy-"+tag+".log"))
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	_, err = waitReady(ctx, p, base+"/readyz", p.started, 10*time.Second)
	return p, base, err
}

// logWarnings returns up to n distinct warnings and errors of a JSON log (message and
// error), leaving out the gateway's notices that it runs without Redis.
func logWarnings(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		var l struct{ Level, Msg, Err string }
		if json.Unmarshal([]byte(line), &l) != nil || (l.Level != "WARN" && l.Level != "ERROR") || strings.Contains(l.Msg, "no REDIS_URL") {
			continue
		}
		say := l.Msg
		if l.Err != "" {
			say += " (" + l.Err + ")"
		}
		if !slices.Contains(out, say) {
			out = append(out, say)
		}
		if len(out) == n {
			break
		}
	}
	return out
}
