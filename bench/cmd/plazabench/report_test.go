package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func result(t *testing.T, line string) *Result {
	t.Helper()
	r, err := parseWrk([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

// wrkLine is what report.lua prints for requests over 10 s with the given p50 and 4xx count.
func wrkLine(requests, p50, s4xx int) string {
	return strings.NewReplacer("REQ", strconv.Itoa(requests), "P50", strconv.Itoa(p50), "S4", strconv.Itoa(s4xx)).Replace(
		`PLAZABENCH {"requests":REQ,"duration_us":10000000,"bytes":1,"errors":{"connect":0,"read":0,"write":0,"timeout":0,"status":S4},` +
			`"status":{"2xx":REQ,"3xx":0,"4xx":S4,"5xx":0,"first_bad":0},"cache":{"hit":0,"miss":0},` +
			`"latency_us":{"mean":1.0,"p50":P50,"p90":1,"p99":2000,"p999":3000,"max":4000}}`)
}

func sampleReport(t *testing.T) Report {
	t.Helper()
	base1, base2 := result(t, wrkLine(500_000, 150, 0)), result(t, wrkLine(300_000, 150, 0))
	cached := result(t, wrkLine(280_000, 300, 0)) // 28k/s against a 40k/s baseline: 0.70
	cached.Cache.Hit = 280_000
	uncached := result(t, wrkLine(100_000, 900, 0)) // 0.25: missed
	uncached.Cache.Miss = 100_000
	me := result(t, wrkLine(220_000, 400, 12)) // 0.55, with errors
	me.Status.FirstBad = 401
	meTuned := result(t, wrkLine(260_000, 300, 0))                                              // 0.65
	search := result(t, wrkLine(1_000, 20_000, 0))                                              // p99 2 ms: met
	grpcGet, restGet := result(t, wrkLine(90_000, 500, 0)), result(t, wrkLine(100_000, 500, 0)) // 0.90: missed
	graphQL := result(t, wrkLine(180_000, 700, 0))                                              // 0.45: met
	// Through the gateway: 0.80× direct, +0.27 ms at p50; tuned 0.625× (0.62), +0.36 ms.
	gwDirect, gw := result(t, wrkLine(300_000, 300, 0)), result(t, wrkLine(240_000, 500, 0))
	gwDirectT, gwT := result(t, wrkLine(320_000, 300, 0)), result(t, wrkLine(200_000, 600, 0))
	gwDirect1, gw1 := result(t, wrkLine(50_000, 150, 0)), result(t, wrkLine(30_000, 420, 0))
	gwDirect1T, gw1T := result(t, wrkLine(52_000, 140, 0)), result(t, wrkLine(28_000, 500, 0))
	bare := result(t, wrkLine(270_000, 400, 0)) // a bare ReverseProxy: 0.90× direct
	// Redis outage: 0.45× with 4 answers 503, hits again 180 ms after Redis returned.
	up, down, back := result(t, wrkLine(200_000, 400, 0)), result(t, wrkLine(90_000, 900, 0)), result(t, wrkLine(150_000, 500, 0))
	down.Status.S5xx, down.Status.FirstBad = 4, 503
	return Report{
		Meta: Meta{Date: time.Date(2026, 11, 23, 21, 0, 0, 0, time.UTC), Cores: 2, CPU: "Test CPU", MemTotal: 24 << 30,
			GoVersion: "go1.26.8", Commit: "abc123", Dirty: true, WrkVersion: "4.1.0", Threads: 2, Conns: 16,
			Warmup: 3 * time.Second, Duration: 10 * time.Second, Products: 100_000,
			LoadBefore: 0.25, LoadAfter: 1.5},
		Runs: []BackendRun{{
			Name: "sqlite", Label: "SQLite, in-process cache and bus",
			Baselines: []Result{*base1, *base2},
			Scenarios: []ScenarioResult{
				{Key: scCached, Name: "(b) cached product GET", Request: "GET /api/products/{id}", Result: cached},
				{Key: scUncached, Name: "(c) uncached product GET", Request: "GET /api/products/{id}", Result: uncached},
				{Key: scList, Name: "(d) filtered list page", Request: "GET /api/products?…", Skip: "GET /api/products answered 404: | no route"},
				{Key: scSearch, Name: "(e) broad search", Request: "GET /api/products?q=days", Result: search},
				{Key: scMe, Name: "(g) GET /api/users/me", Request: "GET /api/users/me", Result: me, Tuned: meTuned},
				{Key: scGRPC, Name: "(i) gRPC GetProduct", Request: "GetProduct", Client: "productload", Result: grpcGet},
				{Key: scGRPCREST, Name: "(j) REST GET, same client", Request: "GET /api/products/{id}", Client: "productload", Result: restGet},
				{Key: scGraphQL, Name: "(k) GraphQL product query", Request: "POST /graphql", Result: graphQL},
				{Key: scGatewayDirect, Name: "(l) cached GET, direct", Request: "GET /api/products/{id}", Result: gwDirect, Tuned: gwDirectT},
				{Key: scGateway, Name: "(l) cached GET through the gateway", Request: "the same, to the gateway", Result: gw, Tuned: gwT},
				{Key: scGatewayDirect1, Name: "(l) direct, 1 connection", Request: "GET /api/products/{id}", Conns: 1, Result: gwDirect1, Tuned: gwDirect1T},
				{Key: scGateway1, Name: "(l) through the gateway, 1 connection", Request: "the same, to the gateway", Conns: 1, Result: gw1, Tuned: gw1T},
				{Key: scBareProxy, Name: "(l) cached GET through a bare ReverseProxy", Request: "the same, to a bare proxy", Result: bare},
			},
			Ready:   []time.Duration{90 * time.Millisecond, 80 * time.Millisecond, 400 * time.Millisecond},
			IdleRSS: 30 << 20,
		}, {
			Name: "postgres+redis", Label: "PostgreSQL + Redis",
			Baselines: []Result{*base1, *base2},
			Scenarios: []ScenarioResult{
				{Key: scOutageHealthy, Name: "(m) hot set, Redis up", Request: "GET /api/products/{id}, 200 ids in turn", Result: up},
				{Key: scOutage, Name: "(m) hot set, Redis killed", Request: "GET /api/products/{id}, 200 ids in turn", Result: down},
				{Key: scOutageBack, Name: "(m) hot set, Redis back", Request: "GET /api/products/{id}, 200 ids in turn", Result: back},
			},
			RedisRecovery: &Recovery{After: 180 * time.Millisecond, Waited: recoveryLimit},
		}},
		GoBench: []GoBench{{Pkg: "plaza/internal/cache", Name: "CacheGet/memory", Procs: 2, Iterations: 1000, NsPerOp: 123.5, BytesPerOp: 48, AllocsPerOp: 1}},
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	run := sampleReport(t).Runs[0]
	want := map[string]string{
		"cached product GET ≥ 0.60× baseline":           "0.70× — met",
		"uncached product GET ≥ 0.35× baseline":         "0.25× — **missed**",
		"create product ≥ 0.080× baseline":              "— — not measured",
		"GET /api/users/me ≥ 0.50× baseline":            "0.55× 0.65× met",
		"broad search p99 ≤ 50 ms":                      "2.00 ms — met",
		"gRPC GetProduct ≥ 1.0× REST GET (same client)": "0.900× — **missed**",
		"GraphQL product query ≥ 0.40× baseline":        "0.45× — met",
		"through the gateway ≥ 0.70× direct":            "0.80× (bare ReverseProxy 0.90×) 0.62× met",
		"gateway adds ≤ 0.30 ms at p50 (1 connection)":  "+0.27 ms +0.36 ms met",
		"start → /readyz 200 ≤ 300 ms":                  "90 ms — met",
		"idle RSS ≤ 40 MB":                              "30.0 MB — met",
	}
	got := run.Targets()
	if len(got) != len(want) {
		t.Fatalf("got %d targets, want %d: %+v", len(got), len(want), got)
	}
	for _, tg := range got {
		if w := want[tg.What]; w != tg.Got+" "+tg.Tuned+" "+tg.Status {
			t.Errorf("%s: got %q, want %q", tg.What, tg.Got+" "+tg.Tuned+" "+tg.Status, w)
		}
	}

	run.Scenarios[1].Result.Cache.Hit = 90_000
	run.Scenarios[3].Result.Status.S5xx = 3 // a search the query timeout stopped: 503
	for _, tg := range run.Targets() {
		if tg.What == "uncached product GET ≥ 0.35× baseline" && tg.Status != "not measured: 47% of the reads hit the cache" {
			t.Errorf("uncached reads that hit the cache: %s", tg.Status)
		}
		if tg.What == "broad search p99 ≤ 50 ms" && tg.Got+" "+tg.Status != "2.00 ms, 3 errors **missed**" {
			t.Errorf("a fast search with errors: %s %s", tg.Got, tg.Status)
		}
	}

	run.Scenarios = nil
	run.Ready = nil
	run.IdleRSS = 50 << 20
	for _, tg := range run.Targets() {
		switch tg.What {
		case "idle RSS ≤ 40 MB":
			if tg.Status != "**missed**" {
				t.Errorf("idle RSS 50 MB: %s", tg.Status)
			}
		default:
			if tg.Status != "not measured" {
				t.Errorf("%s with nothing measured: %s", tg.What, tg.Status)
			}
		}
	}
}

// TestOutageTargets: issue 11's targets appear on the run that measured the outage only,
// and 5xx answers during the outage are a miss however fast the rest were.
func TestOutageTargets(t *testing.T) {
	t.Parallel()
	rep := sampleReport(t)
	for _, tg := range rep.Runs[0].Targets() {
		if strings.Contains(tg.What, "Redis") {
			t.Errorf("the SQLite run has the outage target %q", tg.What)
		}
	}
	run := rep.Runs[1]
	want := map[string]string{
		"reads during a Redis outage ≥ 0.50× Redis up": "0.45×, 4 errors — **missed**",
		"reads during a Redis outage: p99 ≤ 50 ms":     "2.00 ms, 4 errors — **missed**",
		"cache hits again ≤ 1 s after Redis returns":   "180 ms — met",
	}
	got := map[string]string{}
	for _, tg := range run.Targets() {
		got[tg.What] = tg.Got + " " + tg.Tuned + " " + tg.Status
	}
	for what, w := range want {
		if got[what] != w {
			t.Errorf("%s: got %q, want %q", what, got[what], w)
		}
	}

	run.Scenarios[1].Result.Status.S5xx = 0
	run.Scenarios[1].Result.Requests = 120_000 // 0.60×
	run.RedisRecovery = &Recovery{Waited: recoveryLimit}
	for _, tg := range run.Targets() {
		switch tg.What {
		case "reads during a Redis outage ≥ 0.50× Redis up", "reads during a Redis outage: p99 ≤ 50 ms":
			if tg.Status != "met" {
				t.Errorf("%s without errors: %s %s", tg.What, tg.Got, tg.Status)
			}
		case "cache hits again ≤ 1 s after Redis returns":
			if tg.Got+" "+tg.Status != "none in 30 s **missed**" {
				t.Errorf("no hit after Redis returned: %s %s", tg.Got, tg.Status)
			}
		}
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	md := sampleReport(t).Markdown("Hand-written findings.")
	for _, want := range []string{
		"| date | 2026-11-23 21:00 UTC |",
		"2 cores (Test CPU), 24.0 GiB memory",
		"`abc123` with uncommitted changes",
		"`PLAZA_RATE_LIMIT=0`",
		"load average 0.25 before the run, 1.50 after",
		"| (a) baseline | bare net/http JSON handler, own process | 40,000 | 1.00 | 0.15 ms | 2.00 ms | 3.00 ms | 0 | — | 0.00 | — | — | — | mean of 50,000 and 30,000 req/s",
		"| (b) cached product GET | GET /api/products/{id} | 28,000 | 0.70 | 0.30 ms | 2.00 ms | 3.00 ms | 0 | 100% | 0.00 | — | — | — |",
		"| 12 | — | 0.00 | 26,000 | 0.65 | 2.00 ms | errors: 12 4xx (first bad status 401) |",
		"| (i) gRPC GetProduct | GetProduct | 9,000 | — | 0.50 ms |",
		"**0.90× REST GET** of (j)",
		"| sqlite | GET /api/users/me ≥ 0.50× baseline | 0.55× | 0.65× | met |",
		"| (c) uncached product GET | GET /api/products/{id} | 10,000 | 0.25 | 0.90 ms |",
		"not measured: GET /api/products answered 404: \\| no route",
		"| sqlite | 90 ms | 3: 80 ms–400 ms |",
		"| sqlite | uncached product GET ≥ 0.35× baseline | 0.25× | — | **missed** |",
		"| internal/cache | CacheGet/memory | 124 | 48 | 1 |",
		"## Findings\n\nHand-written findings.",
		"| (k) GraphQL product query | POST /graphql | 18,000 | 0.45 |",
		"| sqlite | GraphQL product query ≥ 0.40× baseline | 0.45× | — | met |",
		"**0.80× direct**, 0.62× tuned",
		"| (l) cached GET through a bare ReverseProxy | the same, to a bare proxy | 27,000 | 0.68 |",
		"**0.90× direct** |",
		"| sqlite | through the gateway ≥ 0.70× direct | 0.80× (bare ReverseProxy 0.90×) | 0.62× | met |",
		// At one connection there is no ratio to the baseline, measured at 16.
		"| (l) through the gateway, 1 connection | the same, to the gateway | 3,000 | — | 0.42 ms |",
		"**+0.27 ms at p50** against direct, +0.36 ms tuned",
		"| sqlite | gateway adds ≤ 0.30 ms at p50 (1 connection) | +0.27 ms | +0.36 ms | met |",
		"errors: 4 5xx (first bad status 503); **0.45× Redis up**",
		"**first X-Cache: HIT 180 ms after** Redis answered PING",
		"| postgres+redis | cache hits again ≤ 1 s after Redis returns | 180 ms | — | met |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "CPU profiles") {
		t.Error("a report without profiles has a profiles section")
	}
	if strings.Contains(md, "Warning") {
		t.Error("a quiet machine was warned about")
	}
	busy := sampleReport(t)
	busy.Runs[0].Scenarios[1].Result.OtherCores = 0.5
	busy.Runs[0].Baselines[1].OtherCores = 0.3
	md = busy.Markdown("")
	if !strings.Contains(md, "**Warning:** more than 0.20 of a core went to processes other than wrk, the baseline, Plaza and the PostgreSQL and Redis servers during sqlite (a) baseline run 2, sqlite (c) uncached product GET") {
		t.Errorf("a busy machine was not warned about:\n%s", md)
	}
	if !strings.Contains(md, "| 0 | 0% | 0.50 |") || !strings.Contains(md, "| 0 | — | 0.30 | — | — | — | mean of") {
		t.Errorf("others' CPU not shown:\n%s", md)
	}
}

func TestWriteChart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "chart.svg")
	if err := writeChart(path, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	svg := string(b)
	if strings.Contains(svg, "(hits)") {
		t.Error("uncached reads that missed are marked as cache hits")
	}
	rep := sampleReport(t)
	rep.Runs[0].Scenarios[1].Result.Cache.Hit = 100_000
	if err := writeChart(path, rep); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "0.25 (hits)") {
		t.Error("uncached reads that hit the cache are not marked")
	}
	for _, want := range []string{"<svg", "cached GET", "0.70", "0.25", "n/m", "target", "p99.9", "gRPC ÷ REST", "0.90", "sqlite tuned",
		"GraphQL", "0.45", "gateway ÷ direct", "0.80", "Redis down ÷ up", "gateway, 1 conn", "the gateway adds +0.27 ms at p50"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ got, want string }{
		{fmtInt(0), "0"},
		{fmtInt(999), "999"},
		{fmtInt(1000), "1,000"},
		{fmtInt(1234567), "1,234,567"},
		{fmtInt(-1234), "-1,234"},
		{fmtLatency(157), "0.16 ms"},
		{fmtLatency(12_345), "12.3 ms"},
		{fmtLatency(345_678), "346 ms"},
		{fmtDuration(0), "—"},
		{fmtDuration(87 * time.Millisecond), "87 ms"},
		{fmtDuration(2500 * time.Millisecond), "2.50 s"},
		{fmtDuration(3 * time.Second), "3 s"},
		{fmtDuration(1024248558 * time.Nanosecond), "1.02 s"},
		{fmtMB(30 << 20), "30.0 MB"},
		{fmtFloat(12.25), "12.25"},
		{fmtFloat(1234.6), "1,235"},
		{durationArg(10 * time.Second), "10s"},
		{durationArg(1500 * time.Millisecond), "2s"},
		{durationArg(0), "1s"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5 * ms}, 5 * ms},
		{[]time.Duration{9 * ms, 1 * ms, 5 * ms}, 5 * ms},
		{[]time.Duration{4 * ms, 1 * ms, 2 * ms, 100 * ms}, 3 * ms},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestReportJSONRoundTrip: -render re-renders a saved run exactly as it was first written.
func TestReportJSONRoundTrip(t *testing.T) {
	t.Parallel()
	rep := sampleReport(t)
	rep.Runs[0].Scenarios[0].Result.OtherCores = 0.25
	rep.Runs[0].Profiles = []Profile{{Key: scUncached, Name: "(c) uncached product GET", Seconds: 10, Top: "flat", TopCum: "cum"}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := back.Markdown("f"), rep.Markdown("f"); got != want {
		t.Errorf("re-rendered report differs:\n%s\n---\n%s", got, want)
	}
}

// TestRealtimeMarkdown: each load is judged against its goals, delivery included: a p99
// under the goal with deliveries missing is not met.
func TestRealtimeMarkdown(t *testing.T) {
	loads := []RealtimeResult{
		{Name: "room A", Conns: 10, Rate: 5, Sent: 50, Expected: 500, Delivered: 500, GoalP99: 25 * time.Millisecond, GoalConn: 12 << 10, PerConn: 10 << 10},
		{Name: "room B", Conns: 10, Rate: 5, Sent: 50, Expected: 500, Delivered: 499, GoalP99: 25 * time.Millisecond},
		{Name: "room C", Conns: 10, GoalP99: time.Second, Skip: "the open-file limit is 1024"},
		{Name: "fan-out D", Conns: 10, Rate: 5, Sent: 50, Expected: 500, Delivered: 500, PerConn: 20 << 10},
	}
	loads[0].LatencyUS.P99, loads[1].LatencyUS.P99 = 20_000, 20_000
	md := Report{Realtime: &RealtimeRun{Commit: "abc", Loads: loads}}.Markdown("")
	for _, want := range []string{
		"| room A | 10 | 5 | 50 | 500 (500) | 0 | ",
		"| 25 ms | met |",
		"| room B | 10 | 5 | 50 | 499 (500) | 0 | ",
		"| 25 ms | **missed** |",
		"not measured: the open-file limit is 1024",
		"| room A | 10.0 KiB | 12 KiB | met |",
		"| — | no goal |",                        // fan-out D's latency: a figure, not judged
		"| fan-out D | 20.0 KiB | — | no goal |", // and its memory
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Count(md, "| 25 ms | met |") != 1 {
		t.Errorf("room B, with a delivery missing, is reported met:\n%s", md)
	}
}
