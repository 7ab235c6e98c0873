package main

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"plaza/internal/users"
)

// Meta describes the run: when, on what, at which commit, under which load.
type Meta struct {
	Date       time.Time
	Cores      int
	CPU        string
	MemTotal   int64 // bytes
	GoVersion  string
	Commit     string
	Dirty      bool // the working tree differed from the commit
	WrkVersion string
	Threads    int
	Conns      int
	Warmup     time.Duration
	Duration   time.Duration
	Products   int
	Starts     int
	Argon2     users.Params // the parameters new password hashes use
	Elapsed    time.Duration
	LoadBefore float64 // 1-minute load average when the run started
	LoadAfter  float64
	Notes      []string
}

func collectMeta(ctx context.Context, goBin string, o options, wrkBin string) Meta {
	m := Meta{
		Date: time.Now().UTC(), Cores: runtime.NumCPU(),
		Threads: o.threads, Conns: o.conns, Warmup: o.warmup, Duration: o.duration,
		Products: o.products, Starts: o.starts,
		Argon2: users.DefaultParams, LoadBefore: loadAverage(),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotal, _ = parseStatusField(b, "MemTotal")
	}
	m.GoVersion = output(ctx, "", goBin, "env", "GOVERSION")
	m.Commit = output(ctx, o.root, "git", "rev-parse", "--short=12", "HEAD")
	if m.Commit == "" {
		m.Commit = "unknown"
	}
	m.Dirty = output(ctx, o.root, "git", "status", "--porcelain") != ""
	// wrk -v prints "wrk debian/4.1.0-3+b2 [epoll] Copyright …" and exits 1.
	out, _ := exec.CommandContext(ctx, wrkBin, "-v").CombinedOutput()
	if f := strings.Fields(string(out)); len(f) >= 2 {
		m.WrkVersion = f[1]
	}
	return m
}

func cpuModel(cpuinfo string) string {
	for line := range strings.Lines(cpuinfo) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// output runs a command and returns its trimmed standard output, or "" when it fails.
func output(ctx context.Context, dir, name string, args ...string) string {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// loadAverage is the 1-minute load average, or -1 when unknown. A busy machine at the start
// of a run means other work shared the cores with the measurement.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
