package gateway

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Config is the gateway's own configuration (--config, YAML). Its zero value is not
// useful; Default is what `plaza gateway` runs without a file, and a file's settings are
// laid over it.
type Config struct {
	// Balancer is p2c (power of two choices on in-flight requests) or round_robin; a pool
	// may override it.
	Balancer string          `yaml:"balancer"`
	Health   HealthConfig    `yaml:"health"`
	Outlier  OutlierConfig   `yaml:"outlier"`
	Retry    RetryConfig     `yaml:"retry"`
	Breaker  BreakerConfig   `yaml:"breaker"`
	Limits   Limit           `yaml:"client_limit"` // per client (user, else IP) across every route
	Pools    map[string]Pool `yaml:"pools"`
	Routes   []Route         `yaml:"routes"`
	GRPC     GRPCConfig      `yaml:"grpc"`
}

// HealthConfig is the active health check: GET /readyz (gRPC: grpc.health.v1 Check).
type HealthConfig struct {
	Interval       time.Duration `yaml:"interval"`
	Timeout        time.Duration `yaml:"timeout"`
	UnhealthyAfter int           `yaml:"unhealthy_after"` // consecutive failed checks
	HealthyAfter   int           `yaml:"healthy_after"`   // consecutive passed checks
}

// OutlierConfig is passive ejection: an upstream answering 5xx or refusing connections
// this many times in a row is left out for BaseEjection, doubled at each ejection up to
// MaxEjection; never more than MaxEjectedPercent of a pool at once.
type OutlierConfig struct {
	ConsecutiveFailures int           `yaml:"consecutive_failures"`
	BaseEjection        time.Duration `yaml:"base_ejection"`
	MaxEjection         time.Duration `yaml:"max_ejection"`
	MaxEjectedPercent   int           `yaml:"max_ejected_percent"`
}

// RetryConfig bounds retries: at most Attempts tries of one request, and retries at most
// Budget of the requests of the last ten seconds, plus MinPerSecond.
type RetryConfig struct {
	Attempts     int     `yaml:"attempts"`
	Budget       float64 `yaml:"budget"`
	MinPerSecond float64 `yaml:"min_per_second"`
}

// BreakerConfig is the per-upstream circuit breaker: open after ConsecutiveFailures, one
// probe after OpenFor.
type BreakerConfig struct {
	ConsecutiveFailures int           `yaml:"consecutive_failures"`
	OpenFor             time.Duration `yaml:"open_for"`
}

// Limit is a rate: Rate requests a second on average, Burst at once. Rate 0 is no limit.
type Limit struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Pool is a set of upstreams: the registry's instances (their HTTP addresses), or Static
// addresses.
type Pool struct {
	Balancer string   `yaml:"balancer"`
	Static   []string `yaml:"static"`
}

// Auth says what a route asks of a bearer token: required (401 without a valid one),
// optional (a token that is sent must verify; the default) or none (not looked at: the
// instance decides).
type Auth string

const (
	AuthRequired Auth = "required"
	AuthOptional Auth = "optional"
	AuthNone     Auth = "none"
)

// Route sends matching requests to a pool. The first route that matches wins; Host and
// Methods empty match any.
type Route struct {
	Name       string        `yaml:"name"`
	Host       string        `yaml:"host"`
	PathPrefix string        `yaml:"path_prefix"`
	Methods    []string      `yaml:"methods"`
	Pool       string        `yaml:"pool"` // default: instances
	Auth       Auth          `yaml:"auth"`
	Timeout    time.Duration `yaml:"timeout"` // whole exchange of an ordinary request; streams are never cut
	Limit      *Limit        `yaml:"limit"`   // per client on this route, besides the client limit
}

// GRPCConfig is the gRPC listener's pool: the registry's gRPC addresses.
type GRPCConfig struct {
	Balancer string `yaml:"balancer"`
	Auth     Auth   `yaml:"auth"`
}

// InstancesPool is the pool of the registry's instances.
const InstancesPool = "instances"

// Default is the zero-config gateway: every path to the registry's instances, tokens
// that are sent verified, the client limit given.
func Default(clientLimit Limit) Config {
	return Config{
		Balancer: "p2c",
		Health:   HealthConfig{Interval: 500 * time.Millisecond, Timeout: time.Second, UnhealthyAfter: 2, HealthyAfter: 1},
		Outlier:  OutlierConfig{ConsecutiveFailures: 3, BaseEjection: time.Second, MaxEjection: 30 * time.Second, MaxEjectedPercent: 50},
		Retry:    RetryConfig{Attempts: 3, Budget: 0.2, MinPerSecond: 1},
		Breaker:  BreakerConfig{ConsecutiveFailures: 5, OpenFor: 5 * time.Second},
		Limits:   clientLimit,
		Pools:    map[string]Pool{InstancesPool: {}},
		Routes:   []Route{{Name: "default", PathPrefix: "/", Pool: InstancesPool, Auth: AuthOptional, Timeout: 30 * time.Second}},
		GRPC:     GRPCConfig{Auth: AuthOptional},
	}
}

// ConfigError is a mistake in the file, with the line of the field it names.
type ConfigError struct {
	File  string
	Line  int
	Field string // a path like routes[2].pool
	Msg   string
}

func (e *ConfigError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

// ParseConfig reads a config file's contents over base (what is not in the file keeps
// base's value) and validates the result. Errors are *ConfigError naming the line and
// the field.
func ParseConfig(name string, data []byte, base Config) (Config, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return Config{}, syntaxError(name, err, data)
	}
	cfg := base
	// A file that lists routes or pools lists all of them: merging lists by position would
	// surprise more than it helps.
	cfg.Routes, cfg.Pools = nil, nil
	if err := yaml.UnmarshalWithOptions(data, &cfg, yaml.Strict()); err != nil {
		return Config{}, syntaxError(name, err, data)
	}
	if cfg.Routes == nil {
		cfg.Routes = base.Routes
	}
	if cfg.Pools == nil {
		cfg.Pools = base.Pools
	}
	if _, ok := cfg.Pools[InstancesPool]; !ok {
		cfg.Pools[InstancesPool] = Pool{}
	}
	for _, p := range cfg.validate() {
		p.File, p.Line = name, lineOf(file, p.Field)
		return Config{}, p
	}
	return cfg, nil
}

// syntaxError turns a YAML error (which carries its token's position) into a
// ConfigError. A value the decoder passed on to a parser of its own (time.ParseDuration)
// comes back without a position: the line is then the first that holds the quoted value.
func syntaxError(name string, err error, data []byte) error {
	var yerr yaml.Error
	if errors.As(err, &yerr) {
		if tk := yerr.GetToken(); tk != nil && tk.Position != nil {
			return &ConfigError{File: name, Line: tk.Position.Line, Msg: yerr.GetMessage()}
		}
	}
	msg := err.Error()
	line := 0
	if j := strings.LastIndexByte(msg, '"'); j > 0 {
		if i := strings.LastIndexByte(msg[:j], '"'); i >= 0 && j > i+1 {
			for n, l := range strings.Split(string(data), "\n") {
				if _, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(v) == msg[i+1:j] {
					line = n + 1
					break
				}
			}
		}
	}
	return &ConfigError{File: name, Line: line, Msg: msg}
}

// lineOf finds the line of the field path (routes[2].pool) in the file; 0 when it is not
// in the file (a default).
func lineOf(file *ast.File, field string) int {
	for f := field; f != ""; {
		if p, err := yaml.PathString("$." + f); err == nil {
			if n, err := p.FilterFile(file); err == nil && n != nil && n.GetToken() != nil {
				return n.GetToken().Position.Line
			}
		}
		// Not there itself (a missing key): the nearest enclosing entry that is.
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

func (c *Config) validate() []*ConfigError {
	var errs []*ConfigError
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	balancer := func(field, b string, empty bool) {
		if b == "" && empty {
			return
		}
		if b != "p2c" && b != "round_robin" {
			bad(field, "expected p2c or round_robin, got %q", b)
		}
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "expected a positive duration like 1s, got %s", d)
		}
	}
	balancer("balancer", c.Balancer, false)
	positive("health.interval", c.Health.Interval)
	positive("health.timeout", c.Health.Timeout)
	if c.Health.UnhealthyAfter < 1 || c.Health.HealthyAfter < 1 {
		bad("health", "unhealthy_after and healthy_after must be at least 1")
	}
	if c.Outlier.ConsecutiveFailures < 1 {
		bad("outlier.consecutive_failures", "expected at least 1, got %d", c.Outlier.ConsecutiveFailures)
	}
	positive("outlier.base_ejection", c.Outlier.BaseEjection)
	if c.Outlier.MaxEjection < c.Outlier.BaseEjection {
		bad("outlier.max_ejection", "must be at least base_ejection (%s)", c.Outlier.BaseEjection)
	}
	if c.Outlier.MaxEjectedPercent < 0 || c.Outlier.MaxEjectedPercent > 100 {
		bad("outlier.max_ejected_percent", "expected 0 to 100, got %d", c.Outlier.MaxEjectedPercent)
	}
	if c.Retry.Attempts < 1 {
		bad("retry.attempts", "expected at least 1 (1: no retries), got %d", c.Retry.Attempts)
	}
	if c.Retry.Budget < 0 || c.Retry.Budget > 1 {
		bad("retry.budget", "expected a share of requests from 0 to 1 (0.2 = 20%%), got %g", c.Retry.Budget)
	}
	if c.Retry.MinPerSecond < 0 {
		bad("retry.min_per_second", "expected 0 or more, got %g", c.Retry.MinPerSecond)
	}
	if c.Breaker.ConsecutiveFailures < 1 {
		bad("breaker.consecutive_failures", "expected at least 1, got %d", c.Breaker.ConsecutiveFailures)
	}
	positive("breaker.open_for", c.Breaker.OpenFor)
	checkLimit := func(field string, l Limit) {
		if l.Rate < 0 {
			bad(field+".rate", "expected requests per second >= 0, got %g", l.Rate)
		}
		if l.Rate > 0 && l.Burst < 1 {
			bad(field+".burst", "expected at least 1, got %d", l.Burst)
		}
	}
	checkLimit("client_limit", c.Limits)
	names := make([]string, 0, len(c.Pools))
	for name := range c.Pools {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := c.Pools[name]
		balancer("pools."+name+".balancer", p.Balancer, true)
		for i, a := range p.Static {
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				bad(fmt.Sprintf("pools.%s.static[%d]", name, i), "expected host:port, got %q", a)
			}
		}
		if name == InstancesPool && len(p.Static) > 0 {
			bad("pools."+name+".static", "the %s pool is the registry's; give static addresses to a pool of another name", InstancesPool)
		}
	}
	if len(c.Routes) == 0 {
		bad("routes", "at least one route is needed")
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			bad(f+".name", "required")
		} else if seen[r.Name] {
			bad(f+".name", "%q is used by an earlier route", r.Name)
		}
		seen[r.Name] = true
		if !strings.HasPrefix(r.PathPrefix, "/") {
			bad(f+".path_prefix", "expected a path starting with /, got %q", r.PathPrefix)
		}
		if r.Pool == "" {
			c.Routes[i].Pool = InstancesPool
		} else if _, ok := c.Pools[r.Pool]; !ok {
			bad(f+".pool", "no pool %q (pools: %s)", r.Pool, strings.Join(names, ", "))
		}
		switch r.Auth {
		case "":
			c.Routes[i].Auth = AuthOptional
		case AuthRequired, AuthOptional, AuthNone:
		default:
			bad(f+".auth", "expected required, optional or none, got %q", r.Auth)
		}
		for j, m := range r.Methods {
			if m == "" || strings.ToUpper(m) != m {
				bad(fmt.Sprintf("%s.methods[%d]", f, j), "expected an upper-case method like GET, got %q", m)
			}
		}
		if r.Timeout < 0 {
			bad(f+".timeout", "expected a duration >= 0 (0: none), got %s", r.Timeout)
		}
		if r.Limit != nil {
			checkLimit(f+".limit", *r.Limit)
		}
	}
	balancer("grpc.balancer", c.GRPC.Balancer, true)
	switch c.GRPC.Auth {
	case "":
		c.GRPC.Auth = AuthOptional
	case AuthRequired, AuthOptional, AuthNone:
	default:
		bad("grpc.auth", "expected required, optional or none, got %q", c.GRPC.Auth)
	}
	return errs
}
