// Command plazabench is the harness behind `make bench`. It builds plaza and a bare net/http
// baseline, starts both on loopback, seeds a catalog, drives each scenario with wrk at a
// fixed concurrency after a warm-up, measures start-up time and resident memory, runs the
// testing.B benchmarks, and writes the results as a markdown report and a chart.
//
// Performance is reported as ratios to the baseline measured in the same run on the same
// machine: absolute numbers drift between runs and machines, ratios much less.
//
// Every server it starts listens on 127.0.0.1 and is stopped when the harness ends, fails
// or is interrupted (and killed by the kernel if the harness itself is killed).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "plazabench:", err)
		os.Exit(1)
	}
}

// options are the harness's flags.
type options struct {
	root      string
	outDir    string
	threads   int
	conns     int
	duration  time.Duration
	warmup    time.Duration
	products  int
	starts    int
	goBench   bool
	benchtime string
	profile   string
	timeout   time.Duration
	pgURL     string
	redisURL  string
	render    string
	realtime  bool
	rtOnly    bool
	rtLoads   []string // keys of the real-time loads to measure; none: all
}

func parseOptions(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("plazabench", flag.ContinueOnError)
	fs.StringVar(&o.root, "root", "", "repository root (default: the module root of the working directory)")
	fs.StringVar(&o.outDir, "out", "docs", "directory for benchmarks.md and benchmarks.svg, relative to the root; empty writes nothing")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads")
	fs.IntVar(&o.conns, "conns", 16, "wrk connections (concurrency)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "warm-up per scenario before measuring (whole seconds)")
	fs.IntVar(&o.products, "products", 100_000, "products seeded with `plaza seed` (the search goal is over 100,000)")
	fs.IntVar(&o.starts, "starts", 5, "restarts timed from process start to /readyz 200")
	fs.BoolVar(&o.goBench, "gobench", true, "run the testing.B benchmarks too")
	fs.StringVar(&o.benchtime, "benchtime", "1s", "-benchtime of the testing.B benchmarks")
	fs.StringVar(&o.profile, "profile", "missed", "CPU-profile scenarios under load: missed (those whose target is missed), always, never")
	fs.DurationVar(&o.timeout, "timeout", 45*time.Minute, "give up after this long")
	fs.StringVar(&o.pgURL, "postgres-url", getenv("PLAZA_TEST_POSTGRES_URL"), "admin URL of a throwaway PostgreSQL for a second run (default $PLAZA_TEST_POSTGRES_URL)")
	fs.StringVar(&o.redisURL, "redis-url", getenv("PLAZA_TEST_REDIS_URL"), "URL of a throwaway Redis for that run (default $PLAZA_TEST_REDIS_URL)")
	fs.BoolVar(&o.realtime, "realtime", true, "measure the WebSocket, SSE and GraphQL subscription loads too (a Plaza of their own on SQLite)")
	fs.BoolVar(&o.rtOnly, "realtime-only", false, "measure the real-time loads only (no wrk scenarios, no baseline) and merge them into the report in -out")
	fs.Func("realtime-loads", "comma-separated keys of the real-time loads to measure (ws-1k, ws-10k, sse-5k, gql-1k; default all)", func(v string) error {
		o.rtLoads = strings.Split(v, ",")
		return nil
	})
	fs.StringVar(&o.render, "render", "", "measure nothing: render the report and chart again from this benchmarks.json (after editing bench/findings.md)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch o.profile {
	case "missed", "always", "never":
	default:
		return o, fmt.Errorf("-profile: expected missed, always or never, got %q", o.profile)
	}
	if o.threads < 1 || o.conns < o.threads || o.duration < time.Second || o.warmup < 0 || o.starts < 1 || o.products < 1 {
		return o, errors.New("need -threads >= 1, -conns >= -threads, -duration >= 1s, -warmup >= 0, -starts and -products >= 1")
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	began := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "plazabench %5.1fs: %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, a...))
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("the go command is not on PATH")
	}
	if o.root == "" {
		if o.root, err = moduleRoot(ctx, goBin); err != nil {
			return err
		}
	}
	if o.render != "" {
		b, err := os.ReadFile(o.render)
		if err != nil {
			return err
		}
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", o.render, err)
		}
		return writeReport(o, rep, stdout, logf)
	}
	wrkBin, err := ensureWrk(ctx, logf)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "plazabench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var ps procs
	defer ps.stopAll()

	meta := collectMeta(ctx, goBin, o, wrkBin)
	logf("building plaza and the baseline (commit %s)", meta.Commit)
	bins, err := build(ctx, goBin, o.root, tmp, meta.Commit)
	if err != nil {
		return err
	}

	rep := Report{Meta: meta}
	if o.goBench {
		if pkgs := goBenchPackages(o.root); len(pkgs) > 0 {
			logf("running testing.B benchmarks in %s", strings.Join(pkgs, " "))
			rep.GoBench, _, err = runGoBench(ctx, goBin, o.root, pkgs, o.benchtime)
			if err != nil {
				rep.GoBenchErr = err.Error()
				logf("%v", err)
			}
		}
	}

	h := &harness{
		o: o, logf: logf, ps: &ps, tmp: tmp, bins: bins, goBin: goBin,
		wrk: wrkRunner{bin: wrkBin, genBin: bins.productload, luaDir: filepath.Join(o.root, "bench", "lua"),
			threads: o.threads, conns: o.conns, duration: o.duration, warmup: o.warmup, timeout: 5 * time.Second},
	}
	if !o.rtOnly {
		if err := h.startBaseline(ctx); err != nil {
			return err
		}
	}

	backends := []backendSpec{{name: "sqlite", label: "SQLite, in-process cache and bus"}}
	switch {
	case o.pgURL != "" && o.redisURL != "":
		backends = append(backends, backendSpec{name: "postgres+redis", label: "PostgreSQL + Redis (cache with a local tier, Redis Streams bus)", pgAdminURL: o.pgURL, redisURL: o.redisURL})
	case o.pgURL != "" || o.redisURL != "":
		rep.Meta.Notes = append(rep.Meta.Notes, "The PostgreSQL + Redis run needs both PLAZA_TEST_POSTGRES_URL and PLAZA_TEST_REDIS_URL; only one was set, so it was not run.")
	default:
		rep.Meta.Notes = append(rep.Meta.Notes, "No PostgreSQL + Redis run: PLAZA_TEST_POSTGRES_URL and PLAZA_TEST_REDIS_URL were not set (`make bench` sets them through scripts/with-services.sh when PostgreSQL and redis-server are installed).")
	}

	if o.rtOnly {
		backends = nil
	}
	var failures []error
	if !o.rtOnly {
		first, err := h.measureBaseline(ctx)
		if err != nil {
			return err
		}
		h.baselines = append(h.baselines, first)
	}
	for _, spec := range backends {
		logf("backend %s", spec.name)
		r, err := h.runBackend(ctx, spec)
		if ctx.Err() != nil {
			return fmt.Errorf("stopped before the end, nothing written: %w", context.Cause(ctx))
		}
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
			failures = append(failures, fmt.Errorf("%s: %w", spec.name, err))
			logf("backend %s failed: %v", spec.name, err)
		}
		b, err := h.measureBaseline(ctx)
		if err != nil {
			return err
		}
		h.baselines = append(h.baselines, b)
		r.Baselines = h.baselines[len(h.baselines)-2:]
		rep.Runs = append(rep.Runs, r)
	}
	if o.realtime || o.rtOnly {
		if rep.Realtime, err = h.runRealtime(ctx, rep.Meta); err != nil {
			return fmt.Errorf("stopped before the end, nothing written: %w", err)
		}
	}
	if o.rtOnly && o.outDir != "" {
		// Merged into the last full report, whose other measurements stay as they were.
		if b, err := os.ReadFile(filepath.Join(o.root, o.outDir, "benchmarks.json")); err == nil {
			var last Report
			if err := json.Unmarshal(b, &last); err != nil {
				return fmt.Errorf("benchmarks.json: %w", err)
			}
			last.Realtime = rep.Realtime
			return writeReport(o, last, stdout, logf)
		}
	}
	rep.Meta.Elapsed = time.Since(began)
	rep.Meta.LoadAfter = loadAverage()
	if err := writeReport(o, rep, stdout, logf); err != nil {
		return err
	}
	return errors.Join(failures...)
}

// writeReport prints the markdown report and, with -out, writes it, the chart and the
// measurements (benchmarks.json, which -render reads back) into the output directory.
// bench/findings.md, the hand-written analysis, goes in as the report's last section.
func writeReport(o options, rep Report, stdout io.Writer, logf func(string, ...any)) error {
	findings, _ := os.ReadFile(filepath.Join(o.root, "bench", "findings.md"))
	md := rep.Markdown(string(findings))
	fmt.Fprint(stdout, md)
	if o.outDir == "" {
		return nil
	}
	dir := filepath.Join(o.root, o.outDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := writeChart(filepath.Join(dir, "benchmarks.svg"), rep); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	logf("wrote benchmarks.md, benchmarks.svg and benchmarks.json in %s", o.outDir)
	return nil
}

// moduleRoot is the directory of the plaza module, from the repository root or from the
// bench module (which replaces plaza with that directory).
func moduleRoot(ctx context.Context, goBin string) (string, error) {
	out, err := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{.Dir}}", "plaza").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		return "", errors.New("not inside the plaza repository; run from it or pass -root")
	}
	return dir, nil
}

// ensureWrk finds wrk, installing Debian's package when it is missing and we are root.
func ensureWrk(ctx context.Context, logf func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("wrk is not installed; install it (Debian: apt-get install wrk) or run as root to have it installed")
	}
	logf("wrk is missing: apt-get install -y wrk")
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "wrk")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install -y wrk: %w\n%s", err, out)
		}
		return nil
	}
	if err := install(); err != nil {
		logf("install failed; apt-get update, then again")
		if out, uerr := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); uerr != nil {
			return "", fmt.Errorf("apt-get update: %w\n%s", uerr, out)
		}
		if err := install(); err != nil {
			return "", err
		}
	}
	return exec.LookPath("wrk")
}

type binaries struct{ plaza, baseline, productload string }

// build compiles plaza (with the commit stamped in, as `make build` does) in the product's
// module, and the baseline and the gRPC/REST load generator in the bench module.
func build(ctx context.Context, goBin, root, dir, commit string) (binaries, error) {
	b := binaries{plaza: filepath.Join(dir, "plaza"), baseline: filepath.Join(dir, "baseline"), productload: filepath.Join(dir, "productload")}
	for _, c := range []struct {
		dir  string
		args []string
	}{
		{root, []string{"build", "-ldflags", "-X main.commit=" + commit, "-o", b.plaza, "./cmd/plaza"}},
		{filepath.Join(root, "bench"), []string{"build", "-o", b.baseline, "./baseline"}},
		{filepath.Join(root, "bench"), []string{"build", "-o", b.productload, "./cmd/productload"}},
	} {
		cmd := exec.CommandContext(ctx, goBin, c.args...)
		cmd.Dir = c.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go %s: %w\n%s", strings.Join(c.args, " "), err, out)
		}
	}
	return b, nil
}
