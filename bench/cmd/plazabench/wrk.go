package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Result is one wrk run as report.lua's done() prints it: "PLAZABENCH {json}".
type Result struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Bytes      int64 `json:"bytes"`
	Errors     struct {
		Connect int64 `json:"connect"`
		Read    int64 `json:"read"`
		Write   int64 `json:"write"`
		Timeout int64 `json:"timeout"`
		Status  int64 `json:"status"` // wrk's own count of statuses > 399
	} `json:"errors"`
	Status struct {
		S2xx     int64 `json:"2xx"`
		S3xx     int64 `json:"3xx"`
		S4xx     int64 `json:"4xx"`
		S5xx     int64 `json:"5xx"`
		Failed   int64 `json:"failed,omitempty"` // below 400 but judged failed by the script (GraphQL errors)
		FirstBad int   `json:"first_bad"`        // the first status >= 400 seen, 0 if none
	} `json:"status"`
	Cache struct {
		Hit  int64 `json:"hit"`
		Miss int64 `json:"miss"`
	} `json:"cache"`
	// WrkCPU is the CPU time wrk itself used; OtherCores is how many cores' worth of CPU
	// processes other than wrk, the baseline and Plaza used during the measured pass.
	WrkCPU time.Duration `json:"wrk_cpu_ns,omitempty"`
	// FirstFailure is productload's: the first failed call's gRPC code or transport error.
	FirstFailure string  `json:"first_failure,omitempty"`
	OtherCores   float64 `json:"other_cores,omitempty"`
	LatencyUS    struct {
		Mean float64 `json:"mean"`
		P50  int64   `json:"p50"`
		P90  int64   `json:"p90"`
		P99  int64   `json:"p99"`
		P999 int64   `json:"p999"`
		Max  int64   `json:"max"`
	} `json:"latency_us"`
}

// RPS is completed requests per second over the measured duration.
func (r Result) RPS() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// ErrorCount counts socket errors (connect, read, write, timeout), responses with a status
// of 400 or more, and answers the script judged failed.
func (r Result) ErrorCount() int64 {
	e := r.Errors
	return e.Connect + e.Read + e.Write + e.Timeout + r.Status.S4xx + r.Status.S5xx + r.Status.Failed
}

// HitRatio is the share of responses that carried X-Cache: HIT among those that carried an
// X-Cache header at all; ok is false when none did.
func (r Result) HitRatio() (ratio float64, ok bool) {
	n := r.Cache.Hit + r.Cache.Miss
	if n == 0 {
		return 0, false
	}
	return float64(r.Cache.Hit) / float64(n), true
}

const resultMarker = "PLAZABENCH "

// parseWrk finds report.lua's line in wrk's output.
func parseWrk(out []byte) (Result, error) {
	var r Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, resultMarker); i >= 0 {
			if err := json.Unmarshal([]byte(line[i+len(resultMarker):]), &r); err != nil {
				return r, fmt.Errorf("wrk result line: %w", err)
			}
			return r, nil
		}
	}
	return r, errors.New("wrk printed no " + strings.TrimSpace(resultMarker) + " line (did the Lua script load?)")
}

// load is one wrk invocation, or one of bench/cmd/productload when gen is set.
type load struct {
	url     string
	script  string   // file name under bench/lua
	args    []string // passed to the script's init
	headers []string // "Name: value"
	// gen are productload's arguments; it prints the same result line as report.lua.
	gen []string
}

// wrkRunner runs wrk (or productload) at a fixed shape.
type wrkRunner struct {
	bin      string
	genBin   string // bench/cmd/productload
	luaDir   string
	threads  int
	conns    int
	duration time.Duration
	warmup   time.Duration
	timeout  time.Duration // wrk's per-request timeout
}

// measure warms up, then runs the measured pass, noting how much CPU processes other than
// wrk and those of pids (the servers under test) took meanwhile.
func (w wrkRunner) measure(ctx context.Context, l load, pids func() []int) (Result, error) {
	if w.warmup > 0 {
		if _, err := w.run(ctx, l, w.warmup); err != nil {
			return Result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	before, err := sampleCPU(pids()...)
	if err != nil {
		return Result{}, err
	}
	r, err := w.run(ctx, l, w.duration)
	if err != nil {
		return r, err
	}
	after, err := sampleCPU(pids()...)
	if err != nil {
		return r, err
	}
	r.OtherCores = otherCores(before, after, r.WrkCPU)
	return r, nil
}

func (w wrkRunner) run(ctx context.Context, l load, d time.Duration) (Result, error) {
	bin, args := w.bin, []string{
		"-t" + strconv.Itoa(w.threads), "-c" + strconv.Itoa(w.conns),
		"-d" + durationArg(d), "--timeout", durationArg(w.timeout),
		"-s", filepath.Join(w.luaDir, l.script),
	}
	for _, h := range l.headers {
		args = append(args, "-H", h)
	}
	args = append(args, l.url)
	if len(l.args) > 0 {
		args = append(args, "--")
		args = append(args, l.args...)
	}
	target := l.url
	if l.gen != nil {
		bin = w.genBin
		args = append(slices.Clone(l.gen), "-duration", durationArg(d), "-timeout", w.timeout.String())
		target = strings.Join(l.gen, " ")
	}
	// wrk itself stops after d; the context only guards against a hang.
	ctx, cancel := context.WithTimeout(ctx, d+w.timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LUA_PATH="+filepath.Join(w.luaDir, "?.lua")+";;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("%s %s: %w: %s%s", filepath.Base(bin), target, err, stderr.Bytes(), out)
	}
	r, err := parseWrk(out)
	r.WrkCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, err
}

// durationArg writes d the way wrk reads durations: whole seconds, at least one.
func durationArg(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10) + "s"
}
