// Package config reads Plaza's configuration from environment variables, each with a matching
// flag. A flag wins over its variable, a variable over the built-in default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Config is the whole configuration of `plaza serve` and the commands that share it.
type Config struct {
	HTTPAddr        string
	GRPCAddr        string
	DataDir         string
	DatabaseURL     string
	RedisURL        string
	JWTSecrets      []string // the first signs, all verify
	CORSOrigins     []string
	Env             string // development | production
	LogLevel        slog.Level
	RateLimit       float64 // requests per second per client
	RateBurst       int
	ShutdownTimeout time.Duration
	AdminEmail      string
	AdminPassword   string
	DebugAddr       string
	TrustedProxies  []netip.Prefix
	MaxBodyBytes    int64
	CacheSize       int           // entries in the in-process cache (the local tier when Redis is used)
	WSMaxConns      int           // WebSocket connections per user per instance
	PresenceTTL     time.Duration // how long a chat member outlives its instance's last heartbeat
}

// Production reports whether Plaza runs with production safeguards.
func (c Config) Production() bool { return c.Env == "production" }

// MinJWTSecretLen is the shortest signing key accepted in production.
const MinJWTSecretLen = 32

// ErrHelp is returned when --help was asked for; the usage has been printed.
var ErrHelp = flag.ErrHelp

// Error is an invalid setting. Its message is one line naming the variable.
type Error struct {
	Var string
	Msg string
}

func (e *Error) Error() string { return e.Var + ": " + e.Msg }

type option struct {
	env, flag, def, usage string
	secret                bool
	set                   func(c *Config, v string) error
}

var options = []option{
	{"PLAZA_HTTP_ADDR", "http-addr", ":8080", "HTTP listen address", false, func(c *Config, v string) error {
		c.HTTPAddr = v
		return addr(v)
	}},
	{"PLAZA_GRPC_ADDR", "grpc-addr", ":50051", "gRPC listen address", false, func(c *Config, v string) error {
		c.GRPCAddr = v
		return addr(v)
	}},
	{"PLAZA_DATA_DIR", "data-dir", "./data", "directory for the SQLite file and generated keys", false, func(c *Config, v string) error {
		if v == "" {
			return errors.New("expected a directory path, got an empty value")
		}
		c.DataDir = v
		return nil
	}},
	{"DATABASE_URL", "database-url", "", "PostgreSQL URL (postgres://user:pass@host:5432/db); empty uses SQLite in the data dir", true, func(c *Config, v string) error {
		c.DatabaseURL = v
		if v == "" {
			return nil
		}
		return serviceURL(v, "a postgres:// or postgresql:// URL", "postgres", "postgresql")
	}},
	{"REDIS_URL", "redis-url", "", "Redis URL (redis://host:6379/0); empty uses the in-process cache and bus", true, func(c *Config, v string) error {
		c.RedisURL = v
		if v == "" {
			return nil
		}
		return serviceURL(v, "a redis:// or rediss:// URL", "redis", "rediss")
	}},
	{"PLAZA_JWT_SECRET", "jwt-secret", "", "comma-separated JWT signing keys: the first signs, all verify (generated in development when empty)", true, func(c *Config, v string) error {
		c.JWTSecrets = list(v)
		return nil
	}},
	{"PLAZA_CORS_ORIGINS", "cors-origins", "", "comma-separated origins allowed by CORS (https://shop.example)", false, func(c *Config, v string) error {
		c.CORSOrigins = list(v)
		for _, o := range c.CORSOrigins {
			if o == "*" {
				continue
			}
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return fmt.Errorf("expected origins like https://shop.example, got %q", o)
			}
		}
		return nil
	}},
	{"PLAZA_ENV", "env", "development", "development | production", false, func(c *Config, v string) error {
		if v != "development" && v != "production" {
			return fmt.Errorf("expected development or production, got %q", v)
		}
		c.Env = v
		return nil
	}},
	{"PLAZA_LOG_LEVEL", "log-level", "info", "debug | info | warn | error", false, func(c *Config, v string) error {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("expected debug, info, warn or error, got %q", v)
		}
		return nil
	}},
	{"PLAZA_RATE_LIMIT", "rate-limit", "20", "requests per second per client (0 turns rate limiting off)", false, func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("expected a number of requests per second >= 0, got %q", v)
		}
		c.RateLimit = f
		return nil
	}},
	{"PLAZA_RATE_BURST", "rate-burst", "40", "requests a client may make at once before the rate applies", false, func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("expected a whole number >= 1, got %q", v)
		}
		c.RateBurst = n
		return nil
	}},
	{"PLAZA_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "how long in-flight requests may take to finish on shutdown", false, func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("expected a positive duration like 30s, got %q", v)
		}
		c.ShutdownTimeout = d
		return nil
	}},
	{"PLAZA_ADMIN_EMAIL", "admin-email", "", "email of an admin created at start if absent", false, func(c *Config, v string) error {
		c.AdminEmail = v
		return nil
	}},
	{"PLAZA_ADMIN_PASSWORD", "admin-password", "", "password of that admin", true, func(c *Config, v string) error {
		c.AdminPassword = v
		return nil
	}},
	{"PLAZA_DEBUG_ADDR", "debug-addr", "", "pprof listen address (off when empty; keep it on loopback)", false, func(c *Config, v string) error {
		c.DebugAddr = v
		if v == "" {
			return nil
		}
		return addr(v)
	}},
	{"PLAZA_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed", false, func(c *Config, v string) error {
		c.TrustedProxies = nil
		for _, s := range list(v) {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return fmt.Errorf("expected CIDRs like 10.0.0.0/8, got %q", s)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
		return nil
	}},
	{"PLAZA_CACHE_SIZE", "cache-size", "50000", "entries kept in the in-process cache (with Redis: in the local tier)", false, func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("expected a whole number of entries >= 1, got %q", v)
		}
		c.CacheSize = n
		return nil
	}},
	{"PLAZA_MAX_BODY_BYTES", "max-body-bytes", "1048576", "largest request body accepted, in bytes", false, func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("expected a whole number of bytes >= 1, got %q", v)
		}
		c.MaxBodyBytes = n
		return nil
	}},
	{"PLAZA_WS_MAX_CONNS", "ws-max-conns", "20", "WebSocket connections one user may hold open per instance", false, func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("expected a whole number of connections >= 1, got %q", v)
		}
		c.WSMaxConns = n
		return nil
	}},
	{"PLAZA_PRESENCE_TTL", "presence-ttl", "30s", "how long chat presence outlives a dead instance (heartbeats every third of it)", false, func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 300*time.Millisecond {
			return fmt.Errorf("expected a duration of at least 300ms like 30s, got %q", v)
		}
		c.PresenceTTL = d
		return nil
	}},
}

// Load parses args (flags after the subcommand) and the environment through getenv.
// On --help it prints the usage to out and returns ErrHelp.
func Load(name string, args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := make([]*string, len(options))
	for i, o := range options {
		vals[i] = fs.String(o.flag, o.def, o.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			Usage(out, name)
			return Config{}, ErrHelp
		}
		return Config{}, &Error{Var: "flags", Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return Config{}, &Error{Var: "flags", Msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	var c Config
	for i, o := range options {
		v := o.def
		if given[o.flag] {
			v = *vals[i]
		} else if e, ok := lookup(getenv, o.env); ok {
			v = e
		}
		if err := o.set(&c, v); err != nil {
			return Config{}, &Error{Var: o.env, Msg: err.Error()}
		}
	}
	return c, c.validate()
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := strings.TrimSpace(getenv(key))
	return v, v != ""
}

func (c Config) validate() error {
	if !c.Production() {
		return nil
	}
	if len(c.JWTSecrets) == 0 {
		return &Error{Var: "PLAZA_JWT_SECRET", Msg: "required in production"}
	}
	for _, s := range c.JWTSecrets {
		if len(s) < MinJWTSecretLen {
			return &Error{Var: "PLAZA_JWT_SECRET", Msg: fmt.Sprintf("every key must be at least %d bytes in production", MinJWTSecretLen)}
		}
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			return &Error{Var: "PLAZA_CORS_ORIGINS", Msg: `"*" is refused in production; list the allowed origins`}
		}
	}
	return nil
}

// Usage prints every setting with its variable, flag and default.
func Usage(out io.Writer, name string) {
	fmt.Fprintf(out, "Usage: plaza %s [flags]\n\nEvery flag can also be set by its environment variable; a flag wins.\n\n", name)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tFLAG\tDEFAULT\tMEANING")
	for _, o := range options {
		def := o.def
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(tw, "%s\t--%s\t%s\t%s\n", o.env, o.flag, def, o.usage)
	}
	tw.Flush()
}

func addr(v string) error {
	if _, _, err := splitHostPort(v); err != nil {
		return fmt.Errorf("expected host:port like :8080 or 127.0.0.1:8080, got %q", v)
	}
	return nil
}

func splitHostPort(v string) (string, int, error) {
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return "", 0, errors.New("no port")
	}
	p, err := strconv.Atoi(v[i+1:])
	if err != nil || p < 0 || p > 65535 {
		return "", 0, errors.New("bad port")
	}
	return v[:i], p, nil
}

// serviceURL checks a connection URL without ever echoing it: it may hold a password.
func serviceURL(v, want string, schemes ...string) error {
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("expected %s; the value does not parse as a URL", want)
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return fmt.Errorf("expected %s, got scheme %q", want, u.Scheme)
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
