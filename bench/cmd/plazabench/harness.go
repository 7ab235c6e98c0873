package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// harness holds what every backend run shares: the binaries, wrk, the baseline server and
// the baseline measurements taken so far.
type harness struct {
	o           options
	logf        func(string, ...any)
	ps          *procs
	tmp         string
	bins        binaries
	goBin       string
	wrk         wrkRunner
	baselineURL string
	baselinePID int
	baselines   []Result
}

// backendSpec is one backend to run Plaza on; empty URLs mean SQLite and in-process.
type backendSpec struct {
	name, label string
	pgAdminURL  string
	redisURL    string
}

// Scenario keys; targets refer to them.
const (
	scCached   = "cached"
	scUncached = "uncached"
	scList     = "list"
	scSearch   = "search"
	scCreate   = "create"
	scMe       = "me"
	scLogin    = "login"
	scGRPC     = "grpc"      // GetProduct over gRPC, driven by bench/cmd/productload
	scGRPCREST = "grpc-rest" // the same product over REST, by the same client
	scGraphQL  = "graphql"   // the product of (b) as a GraphQL query
	// The gateway's (issue 17): the product of (b) through `plaza gateway` and direct, in
	// the same pass, at the run's connections and at one.
	scGatewayDirect  = "gateway-direct"
	scGateway        = "gateway"
	scGatewayDirect1 = "gateway-direct-1"
	scGateway1       = "gateway-1"
	scBareProxy      = "bare-proxy" // the same through a bare httputil.ReverseProxy: the floor
	// The Redis outage's (issue 11): a hot set of products read with Redis up, from the
	// moment it is killed, and from the moment it is back.
	scOutageHealthy = "redis-up"
	scOutage        = "redis-down"
	scOutageBack    = "redis-back"
)

// searchWord is the broad search of the search scenario: the demo descriptions' warranty
// lines put it in about 40% of generated products ("30 days", "within 30 days"), and
// neither full-text engine drops it as a stop word.
const searchWord = "days"

// The two ways every scenario runs Plaza. The headline runs the defaults a user ships
// with: production, the access log at info written to a file (the server's output), and
// the rate limiter on, with a rate no load here reaches, so that its cost is paid but it
// never answers 429. The tuned setting turns both off, as the harness's first reports did.
var (
	headlineEnv = []string{"PLAZA_LOG_LEVEL=info", "PLAZA_RATE_LIMIT=" + headlineRate, "PLAZA_RATE_BURST=" + headlineRate}
	tunedEnv    = []string{"PLAZA_LOG_LEVEL=warn", "PLAZA_RATE_LIMIT=0"}
)

const headlineRate = "1000000"

// uncachedIDs is how many product ids the uncached scenario reads in turn.
const uncachedIDs = 20_000

// listQuery is the filtered list page of the list scenario.
const listQuery = "/api/products?category=electronics&min_price=1000&max_price=50000&in_stock=true&sort=-price&limit=20"

const (
	adminEmail = "bench-admin@example.com"
	userEmail  = "bench-user@example.com"
)

// minimalEnv is the environment every server starts from: nothing of the caller's PLAZA_*,
// DATABASE_URL or REDIS_URL leaks into a run.
func minimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (h *harness) startBaseline(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := h.ps.start("baseline", h.bins.baseline,
		[]string{"-addr", addr, "-lifetime", (h.o.timeout + time.Minute).String()},
		minimalEnv(), filepath.Join(h.tmp, "baseline.log"))
	if err != nil {
		return err
	}
	h.baselineURL = "http://" + addr + "/"
	h.baselinePID = p.pid()
	_, err = waitReady(ctx, p, h.baselineURL, p.started, 10*time.Second)
	return err
}

func (h *harness) measureBaseline(ctx context.Context) (Result, error) {
	h.logf("(a) baseline: bare net/http JSON handler")
	r, err := h.wrk.measure(ctx, load{url: h.baselineURL, script: "get.lua"}, func() []int { return []int{h.baselinePID} })
	if err != nil {
		return r, fmt.Errorf("baseline: %w", err)
	}
	if r.Requests == 0 || r.ErrorCount() > 0 {
		return r, fmt.Errorf("baseline: %d requests, %d errors", r.Requests, r.ErrorCount())
	}
	return r, nil
}

// plaza is one running Plaza server.
type plaza struct {
	p     *proc
	base  string // http://127.0.0.1:port
	http  string // HTTP listener host:port
	grpc  string // gRPC listener host:port
	debug string // pprof listener host:port
}

// startPlaza starts `plaza serve` with env on fresh loopback ports. /metrics gets a
// listener of its own, as production wants it (or a token) to serve it at all.
func (h *harness) startPlaza(env []string, tag string) (plaza, error) {
	addrs, err := freeAddrs(4)
	if err != nil {
		return plaza{}, err
	}
	full := append(minimalEnv(), env...)
	full = append(full, "PLAZA_HTTP_ADDR="+addrs[0], "PLAZA_GRPC_ADDR="+addrs[1], "PLAZA_DEBUG_ADDR="+addrs[2], "PLAZA_METRICS_ADDR="+addrs[3])
	p, err := h.ps.start("plaza "+tag, h.bins.plaza, []string{"serve"}, full, filepath.Join(h.tmp, "plaza-"+strings.ReplaceAll(tag, " ", "-")+".log"))
	if err != nil {
		return plaza{}, err
	}
	return plaza{p: p, base: "http://" + addrs[0], http: addrs[0], grpc: addrs[1], debug: addrs[2]}, nil
}

// serverKey is one of the measured servers of a backend: a setting, and whether the
// product cache is off (PLAZA_PRODUCT_CACHE=off, for the uncached scenario).
type serverKey struct {
	tuned          bool
	noProductCache bool
}

func (k serverKey) tag() string {
	t := "headline"
	if k.tuned {
		t = "tuned"
	}
	if k.noProductCache {
		t += " no-product-cache"
	}
	return t
}

// fleet is the measured servers of one backend, started when first needed and all on
// the same database, so that every setting reads the same catalog and one setting's
// measurement follows the other's within seconds.
type fleet struct {
	h       *harness
	env     []string
	servers map[serverKey]plaza
}

func (f *fleet) get(ctx context.Context, k serverKey) (plaza, error) {
	if s, ok := f.servers[k]; ok {
		return s, s.p.alive()
	}
	env := append(slices.Clone(f.env), headlineEnv...)
	if k.tuned {
		env = append(slices.Clone(f.env), tunedEnv...)
	}
	if k.noProductCache {
		env = append(env, "PLAZA_PRODUCT_CACHE=off")
	}
	s, err := f.h.startPlaza(env, "measured "+k.tag())
	if err != nil {
		return s, err
	}
	f.servers[k] = s
	_, err = waitReady(ctx, s.p, s.base+"/readyz", s.p.started, time.Minute)
	return s, err
}

func (f *fleet) pids() []int {
	var pids []int
	for _, s := range f.servers {
		pids = append(pids, s.p.pid())
	}
	return pids
}

func (f *fleet) stop() error {
	var errs []error
	for _, s := range f.servers {
		errs = append(errs, s.p.stop(30*time.Second))
	}
	return errors.Join(errs...)
}

// timeStart starts Plaza, measures process start to the first /readyz 200, and stops it.
func (h *harness) timeStart(ctx context.Context, env []string, tag string) (time.Duration, error) {
	s, err := h.startPlaza(env, tag)
	if err != nil {
		return 0, err
	}
	d, err := waitReady(ctx, s.p, s.base+"/readyz", s.p.started, time.Minute)
	if stopErr := s.p.stop(30 * time.Second); err == nil {
		err = stopErr
	}
	return d, err
}

// seed runs `plaza seed --products N` against the run's database.
func (h *harness) seed(ctx context.Context, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bins.plaza, "seed", "--products", strconv.Itoa(h.o.products))
	cmd.Env = append(minimalEnv(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("plaza seed --products %d: %w\n%s", h.o.products, err, out)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// scenario is one measured load against Plaza.
type scenario struct {
	key, name, request string
	// load is the load against one server.
	load func(s plaza) load
	// probe is one request like the load's, sent first to the headline server: a scenario
	// whose probe fails (the route does not exist yet, say) is reported as not measured
	// instead of as errors.
	probe func(ctx context.Context, s plaza) error
	note  string
	// noProductCache runs the scenario on servers with PLAZA_PRODUCT_CACHE=off.
	noProductCache bool
	// prime, when set, runs against each server before its warm-up.
	prime func(ctx context.Context, s plaza) error
	// client names the load generator when it is not wrk.
	client string
}

// runBackend measures Plaza on one backend: start-up times, seeding, memory and every
// scenario. The returned run holds whatever was measured, also when err is not nil.
func (h *harness) runBackend(ctx context.Context, spec backendSpec) (BackendRun, error) {
	r := BackendRun{Name: spec.name, Label: spec.label}
	dir := filepath.Join(h.tmp, strings.ReplaceAll(spec.name, "+", "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	adminPassword := "Bench-admin-" + randomHex(12)
	userPassword := "Bench-user-" + randomHex(12)
	// Production mode, as deployed: a configured signing key, and no demo catalog added at
	// first start, so the catalog holds exactly the seeded products. The setting's own
	// variables (headlineEnv, tunedEnv) are added per server.
	env := []string{
		"PLAZA_DATA_DIR=" + filepath.Join(dir, "data"),
		"PLAZA_ENV=production",
		"PLAZA_JWT_SECRET=" + randomHex(32),
		"PLAZA_ADMIN_EMAIL=" + adminEmail,
		"PLAZA_ADMIN_PASSWORD=" + adminPassword,
	}
	if spec.pgAdminURL != "" {
		dbURL, drop, err := createDatabase(ctx, spec.pgAdminURL)
		if err != nil {
			return r, err
		}
		defer drop()
		redisURL, flush, err := benchRedis(ctx, spec.redisURL)
		if err != nil {
			return r, err
		}
		defer flush()
		env = append(env, "DATABASE_URL="+dbURL, "REDIS_URL="+redisURL)
	}

	h.logf("first start on an empty database")
	d, err := h.timeStart(ctx, append(slices.Clone(env), headlineEnv...), "first start")
	if err != nil {
		return r, err
	}
	r.ColdReady = d

	h.logf("plaza seed --products %d", h.o.products)
	t0 := time.Now()
	if err := h.seed(ctx, env); err != nil {
		return r, err
	}
	r.SeedTime = time.Since(t0)

	h.logf("timing %d restarts to /readyz 200", h.o.starts)
	for i := range h.o.starts {
		d, err := h.timeStart(ctx, append(slices.Clone(env), headlineEnv...), "restart "+strconv.Itoa(i+1))
		if err != nil {
			return r, err
		}
		r.Ready = append(r.Ready, d)
	}

	fl := &fleet{h: h, env: env, servers: map[serverKey]plaza{}}
	defer fl.stop()
	srv, err := fl.get(ctx, serverKey{})
	if err != nil {
		return r, err
	}
	// Idle: ready, nothing asked yet, the start-up garbage given a moment to be collected.
	time.Sleep(2 * time.Second)
	if r.IdleRSS, err = memStatus(srv.p.pid(), "VmRSS"); err != nil {
		return r, err
	}

	a := api{base: srv.base, client: &http.Client{Timeout: 30 * time.Second}}
	scs, ids, err := h.setUp(ctx, a, dir, adminPassword, userPassword)
	if err != nil {
		return r, err
	}
	// Every process of the run besides wrk: CPU they take is not "others'".
	pids := func() []int {
		return append(append(fl.pids(), h.baselinePID), servicePIDs(spec.pgAdminURL, spec.redisURL)...)
	}
	for _, sc := range scs {
		res := ScenarioResult{Key: sc.key, Name: sc.name, Request: sc.request, Note: sc.note, Client: sc.client}
		if err := sc.probe(ctx, srv); err != nil {
			res.Skip = err.Error()
			h.logf("%s: not measured: %v", sc.name, err)
			r.Scenarios = append(r.Scenarios, res)
			continue
		}
		for _, tuned := range []bool{false, true} {
			k := serverKey{tuned: tuned, noProductCache: sc.noProductCache}
			s, err := fl.get(ctx, k)
			if err != nil {
				return r, err
			}
			h.logf("%s, %s", sc.name, k.tag())
			if sc.prime != nil {
				if err := sc.prime(ctx, s); err != nil {
					return r, fmt.Errorf("%s (%s): priming: %w", sc.name, k.tag(), err)
				}
			}
			var sampler *rssSampler
			if sc.key == scCached && !tuned {
				sampler = sampleRSS(s.p.pid(), 50*time.Millisecond)
			}
			out, err := h.wrk.measure(ctx, sc.load(s), pids)
			if sampler != nil {
				r.LoadRSS = sampler.stop()
			}
			if err != nil {
				return r, fmt.Errorf("%s (%s): %w", sc.name, k.tag(), err)
			}
			if err := s.p.alive(); err != nil {
				return r, err
			}
			if tuned {
				res.Tuned = &out
			} else {
				res.Result = &out
			}
		}
		r.Scenarios = append(r.Scenarios, res)
	}
	gw, err := h.measureGateway(ctx, fl, env, hotID(ids), pids)
	r.Scenarios = append(r.Scenarios, gw...)
	if err != nil {
		return r, err
	}
	if r.PeakRSS, err = memStatus(srv.p.pid(), "VmHWM"); err != nil {
		return r, err
	}
	if spec.redisURL != "" {
		out, rec, err := h.measureOutage(ctx, env, ids, dir, pids)
		r.Scenarios, r.RedisRecovery = append(r.Scenarios, out...), rec
		if err != nil {
			return r, err
		}
	}

	// The ratio targets are judged here against the baseline measured before this backend;
	// the caller sets the final pair, before and after.
	r.Baselines = h.baselines[len(h.baselines)-1:]
	missed := map[string]bool{}
	for _, t := range r.Targets() {
		missed[t.Key] = t.Key != "" && strings.Contains(t.Status, "missed")
	}
	for _, sc := range scs {
		if !h.shouldProfile(r, sc.key, missed[sc.key]) {
			continue
		}
		s, err := fl.get(ctx, serverKey{noProductCache: sc.noProductCache})
		if err != nil {
			return r, err
		}
		h.logf("%s: CPU profile under load", sc.name)
		prof, err := h.profile(ctx, s, sc)
		if err != nil {
			return r, fmt.Errorf("profiling %s: %w", sc.name, err)
		}
		r.Profiles = append(r.Profiles, prof)
	}
	return r, fl.stop()
}

// setUp registers the user, logs both accounts in, collects product ids and returns the
// scenarios, in the order they run, and the ids.
func (h *harness) setUp(ctx context.Context, a api, dir, adminPassword, userPassword string) ([]scenario, []string, error) {
	var userErr, adminErr error
	userToken := ""
	if userErr = a.register(ctx, "Bench User", userEmail, userPassword); userErr == nil {
		userToken, userErr = a.login(ctx, userEmail, userPassword)
	}
	adminToken, adminErr := a.login(ctx, adminEmail, adminPassword)
	ids, idsErr := a.productIDs(ctx, min(h.o.products, uncachedIDs))
	idsFile := filepath.Join(dir, "ids.txt")
	if err := os.WriteFile(idsFile, []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
		return nil, nil, err
	}
	unavailable := func(err error) func(context.Context, plaza) error {
		return func(context.Context, plaza) error { return err }
	}
	// probe sends one request like the scenario's and wants a 2xx answer.
	probe := func(method, path, token string, body any) func(context.Context, plaza) error {
		return func(ctx context.Context, s plaza) error {
			return api{base: s.base, client: a.client}.call(ctx, method, path, token, body, nil)
		}
	}
	get := func(path string, headers ...string) func(plaza) load {
		return func(s plaza) load { return load{url: s.base + path, script: "get.lua", headers: headers} }
	}
	bearer := func(t string) []string { return []string{"Authorization: Bearer " + t} }

	hot := hotID(ids)
	noIDs := unavailable(fmt.Errorf("no product ids: %v", idsErr))
	var scs []scenario
	cached := scenario{key: scCached, name: "(b) cached product GET", request: "GET /api/products/{id}, one id",
		load: get("/api/products/" + hot), probe: noIDs,
		note: "one product, read before so it is cached"}
	if hot != "" {
		cached.probe = probe(http.MethodGet, "/api/products/"+hot, "", nil)
	}
	scs = append(scs, cached)

	uncached := scenario{key: scUncached, name: "(c) uncached product GET", request: "GET /api/products/{id}, a new id each time",
		load: func(s plaza) load {
			return load{url: s.base + "/", script: "ids.lua", args: []string{idsFile, strconv.Itoa(h.o.threads)}}
		},
		probe: noIDs, noProductCache: true, prime: func(ctx context.Context, s plaza) error { return readEach(ctx, s, ids) },
		note: fmt.Sprintf("%s ids in turn, on servers with `PLAZA_PRODUCT_CACHE=off`: every read queries the database; each server reads every id once before the warm-up", fmtInt(int64(len(ids))))}
	if len(ids) > 0 {
		uncached.probe = probe(http.MethodGet, "/api/products/"+ids[0], "", nil)
	}
	scs = append(scs, uncached)

	scs = append(scs, scenario{key: scList, name: "(d) filtered list page", request: "GET " + listQuery,
		load: get(listQuery), probe: probe(http.MethodGet, listQuery, "", nil)})

	searchPath := "/api/products?q=" + searchWord
	scs = append(scs, scenario{key: scSearch, name: "(e) broad search", request: "GET " + searchPath,
		load: get(searchPath), probe: probe(http.MethodGet, searchPath, "", nil),
		note: fmt.Sprintf("one word about 40%% of the %s products hold; first page by relevance", fmtInt(int64(h.o.products)))})

	create := scenario{key: scCreate, name: "(f) create product (admin)", request: "POST /api/products",
		load: func(s plaza) load {
			return load{url: s.base + "/", script: "post_product.lua", args: []string{randomHex(4)}, headers: bearer(adminToken)}
		},
		note: "admin's access token; a new name each time"}
	if adminErr != nil {
		create.probe = unavailable(fmt.Errorf("the admin could not log in: %w", adminErr))
	} else {
		create.probe = probe(http.MethodPost, "/api/products", adminToken, map[string]any{
			"name": "Bench probe", "description": "", "price_cents": 100, "currency": "USD",
			"category": "bench", "subcategory": "load/post", "stock": 1})
	}
	scs = append(scs, create)

	me := scenario{key: scMe, name: "(g) GET /api/users/me", request: "GET /api/users/me with a JWT",
		load: get("/api/users/me", bearer(userToken)...), note: "user's access token"}
	if userErr != nil {
		me.probe = unavailable(fmt.Errorf("no user token: %w", userErr))
	} else {
		me.probe = probe(http.MethodGet, "/api/users/me", userToken, nil)
	}
	scs = append(scs, me)

	login := scenario{key: scLogin, name: "(h) login", request: "POST /api/auth/login",
		load: func(s plaza) load {
			return load{url: s.base + "/", script: "login.lua", args: []string{userEmail, userPassword}}
		},
		note: "one argon2id verification per request"}
	if userErr != nil {
		login.probe = unavailable(fmt.Errorf("no user to log in: %w", userErr))
	} else {
		login.probe = probe(http.MethodPost, "/api/auth/login", "", map[string]string{"email": userEmail, "password": userPassword})
	}
	scs = append(scs, login)

	// Issue 15: GetProduct over gRPC against REST GET of the same product, both driven by
	// bench/cmd/productload at wrk's concurrency, so that the ratio compares transports.
	productload := func(transport string) func(plaza) load {
		return func(s plaza) load {
			addr := s.http
			if transport == "grpc" {
				addr = s.grpc
			}
			return load{gen: []string{"-transport", transport, "-addr", addr, "-id", hot, "-concurrency", strconv.Itoa(h.o.conns)}}
		}
	}
	grpcGet := scenario{key: scGRPC, name: "(i) gRPC GetProduct", request: "plaza.v1.ProductService/GetProduct, the id of (b)",
		load: productload("grpc"), probe: noIDs, client: "productload",
		note: fmt.Sprintf("bench/cmd/productload: %d callers over 4 connections", h.o.conns)}
	restGet := scenario{key: scGRPCREST, name: "(j) REST GET, same client", request: "GET /api/products/{id}, the id of (b)",
		load: productload("rest"), probe: noIDs, client: "productload",
		note: fmt.Sprintf("bench/cmd/productload: %d callers, a keep-alive connection each", h.o.conns)}
	if hot != "" {
		grpcGet.probe = func(ctx context.Context, s plaza) error { return grpcProbe(ctx, s.grpc, hot) }
		restGet.probe = cached.probe
	}
	scs = append(scs, grpcGet, restGet)

	// Issue 14: the product of (b) as a GraphQL query selecting the fields REST returns.
	graphQL := scenario{key: scGraphQL, name: "(k) GraphQL product query", request: "POST /graphql, `product(id:)`, the id of (b)",
		load: func(s plaza) load {
			return load{url: s.base + "/", script: "graphql.lua", args: []string{string(productQuery(hot))}}
		},
		probe: noIDs, note: "the eleven fields REST returns; an answer with `errors` counts as an error"}
	if hot != "" {
		graphQL.probe = func(ctx context.Context, s plaza) error {
			return graphQLProbe(ctx, api{base: s.base, client: a.client}, hot)
		}
	}
	scs = append(scs, graphQL)
	return scs, ids, nil
}

// hotID is the product the cached scenarios read: one from the middle of the list.
func hotID(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[len(ids)/2]
}

// shouldProfile says whether scenario key gets a CPU profile (on its headline server):
// always with -profile=always, with -profile=missed when its target was missed.
func (h *harness) shouldProfile(r BackendRun, key string, missed bool) bool {
	if h.o.profile == "never" {
		return false
	}
	res := r.scenario(key)
	if res == nil || res.Result == nil {
		return false
	}
	return h.o.profile == "always" || missed
}

// profile drives the scenario again (without warm-up) while taking a CPU profile through
// PLAZA_DEBUG_ADDR, and keeps `go tool pprof -top` of it, by flat and by cumulative time.
func (h *harness) profile(ctx context.Context, srv plaza, sc scenario) (Profile, error) {
	secs := int(h.o.duration / time.Second)
	prof := Profile{Key: sc.key, Name: sc.name, Seconds: secs}
	wrkDone := make(chan error, 1)
	go func() {
		_, err := h.wrk.run(ctx, sc.load(srv), h.o.duration+2*time.Second)
		wrkDone <- err
	}()
	select {
	case <-ctx.Done():
		return prof, ctx.Err()
	case <-time.After(time.Second):
	}
	path := filepath.Join(h.tmp, "cpu-"+sc.key+".pprof")
	err := fetch(ctx, "http://"+srv.debug+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), path)
	if werr := <-wrkDone; err == nil {
		err = werr
	}
	if err != nil {
		return prof, err
	}
	for _, cum := range []bool{false, true} {
		args := []string{"tool", "pprof", "-top", "-nodecount=25"}
		if cum {
			args = append(args, "-cum")
		}
		out, err := exec.CommandContext(ctx, h.goBin, append(args, h.bins.plaza, path)...).Output()
		if err != nil {
			return prof, fmt.Errorf("go tool pprof: %w", err)
		}
		if cum {
			prof.TopCum = string(out)
		} else {
			prof.Top = string(out)
		}
	}
	return prof, nil
}

// fetch saves the body of a 200 answer from u to path.
func fetch(ctx context.Context, u, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// redactURL drops the password of a service URL, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// readEach reads every product of ids once from s, 16 at a time, so that the measurement
// of reads that go to the database starts with the rows in the OS page cache (and
// PostgreSQL's buffers): on a machine whose kernel pages out what it finds cold (DAMON
// reclaim), rows last touched by the seeding minutes earlier were read from the disk
// during the first server's warm-up and measured window, not the second's.
func readEach(ctx context.Context, s plaza, ids []string) error {
	a := api{base: s.base, client: &http.Client{Timeout: 30 * time.Second}}
	next := make(chan string)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range next {
				if err := a.call(ctx, http.MethodGet, "/api/products/"+id, "", nil, nil); err != nil {
					errs <- err
					for range next { // drain, so the sender finishes
					}
					return
				}
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs // nil when every read succeeded
}
