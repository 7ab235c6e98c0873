package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	t.Parallel()
	out := `Running 10s test @ http://127.0.0.1:1/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   557.28us    1.06ms  15.01ms   89.12%
  159049 requests in 2.10s, 37.92MB read
Requests/sec:  75705.97
PLAZABENCH {"requests":159049,"duration_us":2100878,"bytes":39762250,"errors":{"connect":1,"read":2,"write":3,"timeout":4,"status":7},"status":{"2xx":159037,"3xx":0,"4xx":5,"5xx":2,"failed":6,"first_bad":404},"cache":{"hit":90,"miss":10},"latency_us":{"mean":557.3,"p50":162,"p90":1769,"p99":4983,"p999":7976,"max":15005}}
`
	r, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 159049 || r.LatencyUS.P50 != 162 || r.LatencyUS.P999 != 7976 || r.Status.FirstBad != 404 {
		t.Errorf("parsed %+v", r)
	}
	if got := r.ErrorCount(); got != 1+2+3+4+5+2+6 {
		t.Errorf("ErrorCount = %d, want socket errors plus 4xx, 5xx and failed answers (23)", got)
	}
	if got := errorDetail(r); got != "errors: 1 connect, 2 read, 3 write, 4 timeout, 5 4xx, 2 5xx, 6 failed answers (first bad status 404)" {
		t.Errorf("errorDetail = %q", got)
	}
	if rps := r.RPS(); rps < 75705 || rps > 75707 {
		t.Errorf("RPS = %f", rps)
	}
	if h, ok := r.HitRatio(); !ok || h != 0.9 {
		t.Errorf("HitRatio = %v, %v", h, ok)
	}

	if _, err := parseWrk([]byte("Running 10s test\nno result\n")); err == nil {
		t.Error("output without a result line parsed")
	}
	if _, err := parseWrk([]byte("PLAZABENCH {not json")); err == nil {
		t.Error("a broken result line parsed")
	}
	var none Result
	if _, ok := none.HitRatio(); ok {
		t.Error("HitRatio without X-Cache answers")
	}
	if none.RPS() != 0 {
		t.Error("RPS of nothing")
	}
}

func TestParseGoBench(t *testing.T) {
	t.Parallel()
	out := `goos: linux
goarch: amd64
pkg: plaza/internal/cache
cpu: Test CPU
BenchmarkCacheGet/memory-2         	 5000000	       240.5 ns/op	      48 B/op	       1 allocs/op
BenchmarkCacheGet/local_tier-2     	 9000000	       130 ns/op	      48 B/op	       1 allocs/op
PASS
ok  	plaza/internal/cache	3.1s
pkg: plaza/internal/httpapi
BenchmarkChain-2   	  300000	      4100 ns/op
BenchmarkBroken-2   	  notanumber	      4100 ns/op
--- FAIL: BenchmarkOther
`
	got := parseGoBench([]byte(out))
	if len(got) != 3 {
		t.Fatalf("parsed %d benchmarks, want 3: %+v", len(got), got)
	}
	want := []GoBench{
		{Pkg: "plaza/internal/cache", Name: "CacheGet/memory", Procs: 2, Iterations: 5000000, NsPerOp: 240.5, BytesPerOp: 48, AllocsPerOp: 1},
		{Pkg: "plaza/internal/cache", Name: "CacheGet/local_tier", Procs: 2, Iterations: 9000000, NsPerOp: 130, BytesPerOp: 48, AllocsPerOp: 1},
		{Pkg: "plaza/internal/httpapi", Name: "Chain", Procs: 2, Iterations: 300000, NsPerOp: 4100, BytesPerOp: -1, AllocsPerOp: -1},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("benchmark %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseStatusField(t *testing.T) {
	t.Parallel()
	status := []byte("Name:\tplaza\nVmHWM:\t   51200 kB\nVmRSS:\t   30720 kB\nThreads:\t7\n")
	for field, want := range map[string]int64{"VmRSS": 30 << 20, "VmHWM": 50 << 20} {
		got, err := parseStatusField(status, field)
		if err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", field, got, err, want)
		}
	}
	if _, err := parseStatusField(status, "VmSwap"); err == nil {
		t.Error("a missing field was found")
	}
	if _, err := parseStatusField(status, "Threads"); err == nil {
		t.Error("a field without kB parsed as memory")
	}
}

func TestSplitProcs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]struct {
		name  string
		procs int
	}{
		"Chain-2":          {"Chain", 2},
		"Cache/local-16":   {"Cache/local", 16},
		"NoSuffix":         {"NoSuffix", 1},
		"Dash-in-name":     {"Dash-in-name", 1},
		"Sub/keys=10000-8": {"Sub/keys=10000", 8},
	} {
		name, procs := splitProcs(in)
		if name != want.name || procs != want.procs {
			t.Errorf("splitProcs(%q) = %q, %d", in, name, procs)
		}
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PLAZA_TEST_POSTGRES_URL": "postgres://x", "PLAZA_TEST_REDIS_URL": "redis://y"}
	o, err := parseOptions(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.pgURL != "postgres://x" || o.redisURL != "redis://y" || o.conns != 16 || o.threads != 2 || o.products != 100_000 {
		t.Errorf("defaults: %+v", o)
	}
	for _, args := range [][]string{
		{"-profile", "sometimes"},
		{"-conns", "1", "-threads", "2"},
		{"-duration", "500ms"},
		{"extra"},
	} {
		if _, err := parseOptions(args, func(string) string { return "" }); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestParseCPU(t *testing.T) {
	t.Parallel()
	stat := "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1 2 3\n"
	busy, err := parseMachineBusy(stat)
	if err != nil || busy != 100+5+50+3+2+1 {
		t.Errorf("parseMachineBusy = %d, %v; want 161", busy, err)
	}
	if _, err := parseMachineBusy("intr 1 2 3\n"); err == nil {
		t.Error("/proc/stat without a cpu line parsed")
	}

	// A command name with spaces and a parenthesis must not shift the fields.
	proc := "4242 (plaza (serve) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 40 0 0 20 0 9 0 123 456 789"
	ticks, err := parseProcTicks(proc)
	if err != nil || ticks != 290 {
		t.Errorf("parseProcTicks = %d, %v; want 290", ticks, err)
	}
	if _, err := parseProcTicks("4242 (plaza) S 1 2"); err == nil {
		t.Error("a short stat line parsed")
	}
}

func TestOtherCores(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	before := cpuSample{at: t0, machine: 1000, ours: 300}
	// 10 s: the machine was busy 15 s of CPU, the servers 9 s, wrk 4 s: others 2 s = 0.2 cores.
	after := cpuSample{at: t0.Add(10 * time.Second), machine: 1000 + 1500, ours: 300 + 900}
	if got := otherCores(before, after, 4*time.Second); got < 0.199 || got > 0.201 {
		t.Errorf("otherCores = %f, want 0.2", got)
	}
	// Tick rounding can make ours exceed the machine's count: never negative.
	if got := otherCores(before, cpuSample{at: after.at, machine: 1000 + 100, ours: 300 + 100}, time.Second); got != 0 {
		t.Errorf("otherCores = %f, want 0", got)
	}
}

func TestListeningInodes(t *testing.T) {
	t.Parallel()
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 5001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1538 0100007F:D352 01 00000000:00000000 00:00000000 00000000   101        0 5002 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5003 1 0000000000000000 100 0 0 10 0
   3: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5004 1 0000000000000000 100 0 0 10 0
`
	// 0x1538 = 5432 (listening and one connection), 0x18EB = 6379, 0x50 = 80 (not asked for).
	got := listeningInodes(table, []int{5432, 6379})
	if len(got) != 2 || got[0] != "5001" || got[1] != "5003" {
		t.Errorf("listeningInodes = %v, want [5001 5003]", got)
	}
	if pp, ok := parentPID("77 (postgres: plaza db (x)) S 42 77 77 0"); !ok || pp != 42 {
		t.Errorf("parentPID = %d, %v", pp, ok)
	}
}

func TestLogWarnings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gateway.log")
	log := `{"level":"INFO","msg":"gateway listening"}
{"level":"WARN","msg":"gateway: no REDIS_URL; rate limits are counted by each gateway alone"}
{"level":"WARN","msg":"gateway: upstream ejected","err":"connection refused"}
not json
{"level":"WARN","msg":"gateway: upstream ejected","err":"connection refused"}
{"level":"ERROR","msg":"gateway: no upstream available"}
{"level":"WARN","msg":"third"}
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got := logWarnings(path, 2)
	if want := []string{"gateway: upstream ejected (connection refused)", "gateway: no upstream available"}; !slices.Equal(got, want) {
		t.Errorf("logWarnings = %q, want %q", got, want)
	}
	if logWarnings(filepath.Join(t.TempDir(), "none"), 2) != nil {
		t.Error("warnings from a missing log")
	}
}

// TestRealtimeFrames: the generator finds a message's send time and an event's stock in
// the JSON Plaza sends as decoding it would, and nothing in what is not one.
func TestRealtimeFrames(t *testing.T) {
	t.Parallel()
	sent := time.Unix(0, 1796028528123456789)
	frame := `{"type":"message","room":"general","message":{"id":"m","room":"general","user_id":"u","user_name":"A \"client_id\":\"1\"","text":"bench","sent_at":"2026-11-30T08:00:00Z","client_id":"1796028528123456789"}}`
	if got, ok := messageSentAt([]byte(frame)); !ok || !got.Equal(sent) {
		t.Errorf("messageSentAt = %v %v, want %v", got, ok, sent)
	}
	for _, f := range []string{
		`{"type":"presence","room":"general","members":[]}`,
		`{"type":"message","message":{"client_id":"abc"}}`,
		`{"type":"message","message":{"client_id":"99999999999999999999"}}`,
		`{"type":"message","message":{"client_id":""}}`,
	} {
		if got, ok := messageSentAt([]byte(f)); ok {
			t.Errorf("messageSentAt(%s) = %v, want none", f, got)
		}
	}
	data := `{"id":"1-0","type":"product.updated","data":{"id":"p","name":"stock","stock":42,"version":3}}`
	if got, ok := eventStock([]byte(data)); !ok || got != 42 {
		t.Errorf("eventStock = %d %v, want 42", got, ok)
	}
	if got, ok := eventStock([]byte(`{"data":{"stock":"x"}}`)); ok {
		t.Errorf("eventStock of no number = %d, want none", got)
	}
}

// Addresses for one server's listeners are distinct: a port handed out twice makes the
// server's second listener fail and the run stop (it happened between pprof and metrics).
func TestFreeAddrsAreDistinct(t *testing.T) {
	addrs, err := freeAddrs(200)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
}
