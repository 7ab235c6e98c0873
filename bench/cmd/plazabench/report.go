package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is everything one harness run measured.
type Report struct {
	Meta       Meta
	Runs       []BackendRun
	GoBench    []GoBench
	GoBenchErr string
	Realtime   *RealtimeRun
}

// BackendRun is Plaza measured on one backend.
type BackendRun struct {
	Name      string
	Label     string
	Baselines []Result // measured just before and just after this backend's scenarios
	Scenarios []ScenarioResult
	ColdReady time.Duration   // first start, empty database: migrations, key, admin bootstrap
	Ready     []time.Duration // restarts on the seeded database
	SeedTime  time.Duration
	IdleRSS   int64 // bytes, ready and before any load
	LoadRSS   int64 // bytes, the largest VmRSS sampled during the cached GET scenario
	PeakRSS   int64 // bytes, VmHWM after every scenario (login's argon2id memory included)
	Profiles  []Profile
	Problems  []string
}

// ScenarioResult is one scenario's measurement, or why it was not measured.
type ScenarioResult struct {
	Key     string
	Name    string
	Request string
	Note    string
	Result  *Result // nil when not measured
	Skip    string
}

// Profile is the top of a CPU profile taken while a scenario ran.
type Profile struct {
	Key, Name string
	Seconds   int
	Top       string // go tool pprof -top
	TopCum    string // go tool pprof -top -cum
}

// BaselineRPS is the mean of the baseline runs around this backend's scenarios.
func (b BackendRun) BaselineRPS() float64 {
	var sum float64
	var n int
	for _, r := range b.Baselines {
		if rps := r.RPS(); rps > 0 {
			sum += rps
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// Ratio is a scenario's throughput as a multiple of the baseline's; ok is false when either
// was not measured.
func (b BackendRun) Ratio(key string) (float64, bool) {
	s := b.scenario(key)
	base := b.BaselineRPS()
	if s == nil || s.Result == nil || base == 0 {
		return 0, false
	}
	return s.Result.RPS() / base, true
}

func (b BackendRun) scenario(key string) *ScenarioResult {
	for i := range b.Scenarios {
		if b.Scenarios[i].Key == key {
			return &b.Scenarios[i]
		}
	}
	return nil
}

// ReadyMedian is the median of the timed restarts.
func (b BackendRun) ReadyMedian() time.Duration {
	return median(b.Ready)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// The targets of issue 6.
var ratioTargets = map[string]float64{scCached: 0.60, scUncached: 0.35, scMe: 0.50}

const (
	targetReady   = 300 * time.Millisecond
	targetIdleRSS = 40 << 20
	// maxUncachedHits is the share of cache hits above which the uncached scenario did not
	// measure uncached reads.
	maxUncachedHits = 0.05
)

// Target is one target checked against one backend run.
type Target struct {
	What   string
	Got    string
	Status string // met, missed, not measured
}

// Targets checks r against the targets.
func (b BackendRun) Targets() []Target {
	var ts []Target
	for _, t := range []struct {
		key, what string
	}{
		{scCached, "cached product GET ≥ 0.60× baseline"},
		{scUncached, "uncached product GET ≥ 0.35× baseline"},
		{scMe, "GET /api/users/me ≥ 0.50× baseline"},
	} {
		ratio, ok := b.Ratio(t.key)
		if !ok {
			ts = append(ts, Target{What: t.what, Got: "—", Status: "not measured"})
			continue
		}
		if t.key == scUncached {
			// Reads that hit a cache tier do not measure the uncached path.
			if hit, ok := b.scenario(t.key).Result.HitRatio(); ok && hit > maxUncachedHits {
				ts = append(ts, Target{What: t.what, Got: fmt.Sprintf("%.2f×", ratio),
					Status: fmt.Sprintf("not measured: %.0f%% of the reads hit the cache", 100*hit)})
				continue
			}
		}
		ts = append(ts, Target{What: t.what, Got: fmt.Sprintf("%.2f×", ratio), Status: metOrMissed(ratio >= ratioTargets[t.key])})
	}
	if len(b.Ready) > 0 {
		m := b.ReadyMedian()
		ts = append(ts, Target{What: "start → /readyz 200 ≤ 300 ms", Got: fmtDuration(m), Status: metOrMissed(m <= targetReady)})
	} else {
		ts = append(ts, Target{What: "start → /readyz 200 ≤ 300 ms", Got: "—", Status: "not measured"})
	}
	if b.IdleRSS > 0 {
		ts = append(ts, Target{What: "idle RSS ≤ 40 MB", Got: fmtMB(b.IdleRSS), Status: metOrMissed(b.IdleRSS <= targetIdleRSS)})
	} else {
		ts = append(ts, Target{What: "idle RSS ≤ 40 MB", Got: "—", Status: "not measured"})
	}
	return ts
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// Markdown renders the report; findings (hand-written analysis, may be empty) is appended
// as its own section.
func (r Report) Markdown(findings string) string {
	var b strings.Builder
	m := r.Meta
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	w("# Benchmarks\n\n")
	w("Written by `make bench` (bench/cmd/plazabench); run it again rather than editing the numbers. ")
	w("Throughput is compared as a ratio to a bare net/http JSON handler measured in the same run on the same machine: ")
	w("absolute numbers drift between runs and machines, the ratios much less.\n\n")
	w("| | |\n|---|---|\n")
	w("| date | %s |\n", m.Date.Format("2006-01-02 15:04 MST"))
	machine := fmt.Sprintf("%d cores", m.Cores)
	if m.CPU != "" {
		machine += " (" + m.CPU + ")"
	}
	if m.MemTotal > 0 {
		machine += fmt.Sprintf(", %.1f GiB memory", float64(m.MemTotal)/(1<<30))
	}
	w("| machine | %s; wrk and the servers share it |\n", machine)
	w("| Go | %s |\n", m.GoVersion)
	commit := "`" + m.Commit + "`"
	if m.Dirty {
		commit += " with uncommitted changes in the working tree"
	}
	w("| commit | %s |\n", commit)
	var backends []string
	for _, run := range r.Runs {
		backends = append(backends, run.Label)
	}
	w("| backends | %s |\n", strings.Join(backends, "; "))
	w("| load | wrk %s, %d threads, %d connections, %s warm-up then %s measured per scenario |\n",
		m.WrkVersion, m.Threads, m.Conns, fmtDuration(m.Warmup), fmtDuration(m.Duration))
	w("| Plaza settings | `PLAZA_ENV=production`, `PLAZA_RATE_LIMIT=0` (so the limiter does not turn the load into 429s), `PLAZA_LOG_LEVEL=warn`, `PLAZA_CACHE_SIZE=%d`; %s products from `plaza seed` |\n",
		m.CacheSize, fmtInt(int64(m.Products)))
	w("| password hashing | argon2id, m=%d KiB, t=%d, p=%d (`users.DefaultParams`) |\n", m.Argon2.Memory, m.Argon2.Time, m.Argon2.Threads)
	w("| harness time | %s |\n", fmtDuration(m.Elapsed.Round(time.Second)))
	if m.LoadBefore >= 0 {
		w("| machine load | 1-minute load average %.2f before the run, %.2f after (the run's own load included) |\n", m.LoadBefore, m.LoadAfter)
	}
	w("\n")
	if busy := r.busyScenarios(); len(busy) > 0 {
		w("**Warning:** more than %.2f of a core went to processes other than wrk, the baseline, Plaza and the PostgreSQL and Redis servers during %s (column \"others' CPU\"). Either other work shared the cores with the measurement, so those figures understate Plaza or the baseline, and unevenly; or database backends started and exited within the pass (a connection pool that closes and reopens connections), whose CPU cannot be attributed.\n\n",
			maxOtherCores, strings.Join(busy, ", "))
	}
	w("![Throughput ratios and latencies](benchmarks.svg)\n\n")
	for _, n := range m.Notes {
		w("%s\n\n", n)
	}

	for _, run := range r.Runs {
		w("## %s\n\n", run.Label)
		w("| scenario | request | req/s | × baseline | p50 | p99 | p99.9 | errors | X-Cache HIT | others' CPU | notes |\n")
		w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		base := run.BaselineRPS()
		if len(run.Baselines) > 0 {
			bl := run.Baselines[0]
			var each []string
			others := 0.0
			for _, x := range run.Baselines {
				each = append(each, fmtInt(int64(x.RPS())))
				others = max(others, x.OtherCores)
			}
			w("| (a) baseline | bare net/http JSON handler, own process | %s | 1.00 | %s | %s | %s | %d | — | %.2f | mean of %s req/s, measured before and after; latencies of the first |\n",
				fmtInt(int64(base)), fmtLatency(bl.LatencyUS.P50), fmtLatency(bl.LatencyUS.P99), fmtLatency(bl.LatencyUS.P999), bl.ErrorCount(), others, strings.Join(each, " and "))
		}
		for _, s := range run.Scenarios {
			if s.Result == nil {
				w("| %s | %s | — | — | — | — | — | — | — | — | not measured: %s |\n", s.Name, s.Request, oneLine(s.Skip))
				continue
			}
			res := s.Result
			ratio, _ := run.Ratio(s.Key)
			hit := "—"
			if h, ok := res.HitRatio(); ok {
				hit = fmt.Sprintf("%.0f%%", 100*h)
			}
			note := s.Note
			if res.ErrorCount() > 0 {
				note = strings.TrimPrefix(note+"; ", "; ") + errorDetail(*res)
			}
			w("| %s | %s | %s | %.2f | %s | %s | %s | %s | %s | %.2f | %s |\n", s.Name, s.Request, fmtInt(int64(res.RPS())), ratio,
				fmtLatency(res.LatencyUS.P50), fmtLatency(res.LatencyUS.P99), fmtLatency(res.LatencyUS.P999),
				fmtInt(res.ErrorCount()), hit, res.OtherCores, note)
		}
		w("\n")
		for _, p := range run.Problems {
			w("**Problem:** %s\n\n", oneLine(p))
		}
	}

	w("## Process\n\n")
	w("| backend | start → /readyz 200, median of restarts | restarts (min–max) | first start, empty database | seeding | idle RSS | peak RSS during cached GET | VmHWM after all scenarios |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		spread := "—"
		if len(run.Ready) > 0 {
			spread = fmt.Sprintf("%d: %s–%s", len(run.Ready), fmtDuration(slices.Min(run.Ready)), fmtDuration(slices.Max(run.Ready)))
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", run.Name, fmtDuration(run.ReadyMedian()), spread,
			fmtDuration(run.ColdReady), fmtDuration(run.SeedTime.Round(10*time.Millisecond)), fmtMB(run.IdleRSS), fmtMB(run.LoadRSS), fmtMB(run.PeakRSS))
	}
	w("\nStart → ready is timed from just before the process is started to the first 200 from `/readyz` (polled every millisecond). RSS is VmRSS from /proc/<pid>/status; idle is 2 s after ready, before any request.\n\n")

	w("## Targets\n\n| backend | target | measured | |\n|---|---|---:|---|\n")
	for _, run := range r.Runs {
		for _, t := range run.Targets() {
			w("| %s | %s | %s | %s |\n", run.Name, t.What, t.Got, t.Status)
		}
	}
	w("\n")

	r.realtimeMarkdown(w)

	w("## Go benchmarks\n\n")
	if len(r.GoBench) == 0 && r.GoBenchErr == "" {
		w("Not run.\n\n")
	} else {
		w("`go test -run '^$' -bench . -benchmem` on the hot paths, one process, no network.\n\n")
		w("| package | benchmark | ns/op | B/op | allocs/op |\n|---|---|---:|---:|---:|\n")
		for _, g := range r.GoBench {
			w("| %s | %s | %s | %s | %s |\n", strings.TrimPrefix(g.Pkg, "plaza/"), g.Name, fmtFloat(g.NsPerOp), fmtOptional(g.BytesPerOp), fmtOptional(g.AllocsPerOp))
		}
		w("\n")
		if r.GoBenchErr != "" {
			w("**The benchmarks failed:**\n\n```\n%s\n```\n\n", strings.TrimSpace(lastLines(r.GoBenchErr, 30)))
		}
	}

	var profiled bool
	for _, run := range r.Runs {
		if len(run.Profiles) > 0 {
			profiled = true
		}
	}
	if profiled {
		w("## CPU profiles under load\n\n")
		w("Taken through `PLAZA_DEBUG_ADDR` while wrk drove the scenario again; wrk ran on the same cores, so its time is not in these profiles but is missing from Plaza's.\n\n")
		for _, run := range r.Runs {
			for _, p := range run.Profiles {
				w("<details><summary>%s, %s: %d s CPU profile, top by flat and by cumulative time</summary>\n\n", run.Name, p.Name, p.Seconds)
				w("```\n%s\n```\n\n```\n%s\n```\n\n</details>\n\n", strings.TrimSpace(p.Top), strings.TrimSpace(p.TopCum))
			}
		}
	}

	w("## Method\n\n")
	w("- One `plaza serve` per backend, on 127.0.0.1, started by the harness with a fresh database and stopped at the end; the baseline is `bench/baseline`, a bare net/http handler encoding a small JSON object, in its own process, measured before the first backend, between backends and after the last; each backend's ratios use the mean of the two baseline runs around it.\n")
	w("- wrk runs the same Lua reporting code (bench/lua/report.lua) in every scenario, the baseline included: `response()` counts status classes and `X-Cache` values, `done()` prints JSON. Errors are socket errors (connect, read, write, timeout) plus responses with a status of 400 or more. Latencies are wrk's, in a closed loop of %d connections.\n", m.Conns)
	w("- (b) reads one product again and again; (c) walks every seeded id in order, a different one per request, with a cache (`PLAZA_CACHE_SIZE`) smaller than the id list, so each read misses (the X-Cache column shows it); (e) creates products with new names as the admin; (f) and (g) use a user registered through `POST /api/users`.\n")
	w("- Start → ready: the first start runs the migrations on an empty database; the timed restarts find the seeded database. The PostgreSQL + Redis run uses the throwaway servers of scripts/with-services.sh, which run PostgreSQL with `fsync=off`: writes there are faster than on a durable server.\n\n")

	if f := strings.TrimSpace(findings); f != "" {
		w("## Findings\n\n%s\n", f)
	}
	return b.String()
}

// maxOtherCores is how much CPU other processes may take during a measurement before the
// report warns that the machine was shared.
const maxOtherCores = 0.2

// busyScenarios names the measurements during which other processes took more than
// maxOtherCores.
func (r Report) busyScenarios() []string {
	var busy []string
	for _, run := range r.Runs {
		for i, b := range run.Baselines {
			if b.OtherCores > maxOtherCores {
				busy = append(busy, fmt.Sprintf("%s (a) baseline run %d", run.Name, i+1))
			}
		}
		for _, s := range run.Scenarios {
			if s.Result != nil && s.Result.OtherCores > maxOtherCores {
				busy = append(busy, run.Name+" "+s.Name)
			}
		}
	}
	return busy
}

func errorDetail(r Result) string {
	var parts []string
	e := r.Errors
	for _, p := range []struct {
		n    int64
		what string
	}{{e.Connect, "connect"}, {e.Read, "read"}, {e.Write, "write"}, {e.Timeout, "timeout"}, {r.Status.S4xx, "4xx"}, {r.Status.S5xx, "5xx"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", fmtInt(p.n), p.what))
		}
	}
	s := "errors: " + strings.Join(parts, ", ")
	if r.Status.FirstBad != 0 {
		s += fmt.Sprintf(" (first bad status %d)", r.Status.FirstBad)
	}
	return s
}

// fmtLatency writes microseconds as milliseconds with sensible precision.
func fmtLatency(us int64) string {
	ms := float64(us) / 1000
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute && d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + " s"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
	default:
		return d.String()
	}
}

func fmtMB(b int64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
}

// fmtInt writes n with thousands separators.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func fmtFloat(v float64) string {
	if v >= 100 {
		return fmtInt(int64(v + 0.5))
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func fmtOptional(v float64) string {
	if v < 0 {
		return "—"
	}
	return fmtFloat(v)
}

// oneLine keeps a message on one table row.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
