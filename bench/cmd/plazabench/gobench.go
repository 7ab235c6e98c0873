package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// GoBench is one testing.B result line.
type GoBench struct {
	Pkg         string // import path
	Name        string // without the "Benchmark" prefix and the -GOMAXPROCS suffix
	Procs       int
	Iterations  int64
	NsPerOp     float64
	BytesPerOp  float64 // -1 when not reported
	AllocsPerOp float64 // -1 when not reported
}

// benchPackages are the packages of the hot paths whose testing.B benchmarks the harness
// runs: the middleware chain, the rate limiter, the access log's buffer, the cache, token
// verification and the catalog.
var benchPackages = []string{"internal/httpapi", "internal/ratelimit", "internal/logbuf", "internal/cache", "internal/users", "internal/catalog"}

// goBenchPackages returns those of benchPackages under root that have benchmarks.
func goBenchPackages(root string) []string {
	var pkgs []string
	for _, p := range benchPackages {
		tests, _ := filepath.Glob(filepath.Join(root, p, "*_test.go"))
		for _, f := range tests {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte("\nfunc Benchmark")) {
				pkgs = append(pkgs, "./"+p)
				break
			}
		}
	}
	return pkgs
}

// runGoBench runs the testing.B benchmarks of pkgs and returns the parsed results and the
// raw output.
func runGoBench(ctx context.Context, goBin, root string, pkgs []string, benchtime string) ([]GoBench, []byte, error) {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1", "-benchtime", benchtime}, pkgs...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, out, fmt.Errorf("go test -bench: %w\n%s", err, out)
	}
	return parseGoBench(out), out, nil
}

// parseGoBench reads `go test -bench -benchmem` output; "pkg:" lines name the package of
// the lines that follow.
func parseGoBench(out []byte) []GoBench {
	var res []GoBench
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b := GoBench{Pkg: pkg, Iterations: iters, BytesPerOp: -1, AllocsPerOp: -1}
		b.Name, b.Procs = splitProcs(strings.TrimPrefix(f[0], "Benchmark"))
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp = v
			case "B/op":
				b.BytesPerOp = v
			case "allocs/op":
				b.AllocsPerOp = v
			}
		}
		res = append(res, b)
	}
	return res
}

// splitProcs splits "Name/sub-8" into "Name/sub" and 8.
func splitProcs(s string) (string, int) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return s, 1
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 1
	}
	return s[:i], n
}
