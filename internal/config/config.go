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

	"plaza/internal/discovery"
	"plaza/internal/store"
)

// Config is the whole configuration of `plaza serve` and the commands that share it.
type Config struct {
	HTTPAddr        string
	GRPCAddr        string
	GRPCTLSCert     string // PEM certificate (chain) file; with GRPCTLSKey, gRPC serves TLS
	GRPCTLSKey      string
	DataDir         string
	SQLiteMmapBytes int64 // how much of the SQLite file is read through a memory map (0: none)
	DatabaseURL     string
	RedisURL        string
	JWTSecrets      []string // the first signs, all verify
	CORSOrigins     []string
	Env             string // development | production
	LogLevel        slog.Level
	RateLimit       float64 // requests per second per client
	RateBurst       int
	ShutdownTimeout time.Duration
	SessionLifetime time.Duration // how long a login's refresh tokens last in all
	QueryTimeout    time.Duration // database time one list or search may take
	// DrainDelay is how long a stopping server keeps serving, readiness failing, before its
	// listeners close: the time a load balancer needs to see the 503 and stop routing here.
	DrainDelay     time.Duration
	AdminEmail     string
	AdminPassword  string
	DebugAddr      string
	MetricsAddr    string // when set, /metrics is served there and not on the public listener
	MetricsToken   string // when set, /metrics on the public listener needs it as a bearer token
	TrustedProxies []netip.Prefix
	MaxBodyBytes   int64
	CacheSize      int           // entries in the in-process cache (the local tier when Redis is used)
	ProductCache   bool          // false: product reads skip the cache (a benchmarking aid)
	WSMaxConns     int           // WebSocket connections per user per instance
	PresenceTTL    time.Duration // how long a chat member outlives its instance's last heartbeat
	GraphQL        GraphQL
	Discovery      Discovery
	Gateway        Gateway
	// Version is the build's version, set by the command (not a setting): instances
	// announce it.
	Version string
}

// Discovery is how instances announce themselves and gateways find them.
type Discovery struct {
	Spec          string        // PLAZA_DISCOVERY: redis, static:…, dns://…, dns+srv://…; "" = redis when REDIS_URL is set
	TTL           time.Duration // a registration lapses this long after its last heartbeat
	Zone          string        // this instance's (or gateway's) zone, for zone preference
	AdvertiseHost string        // host announced instead of the listener's when it listens on all interfaces
}

// Gateway holds the listen addresses of `plaza gateway`.
type Gateway struct {
	HTTPAddr string
	GRPCAddr string
}

// GraphQL holds the limits of /graphql.
type GraphQL struct {
	MaxDepth      int
	MaxComplexity int
	MaxAliases    int
	APQCacheSize  int    // persisted queries kept
	Introspection string // auto (on in development, off in production) | on | off
}

// GraphQLIntrospection reports whether /graphql answers introspection queries.
func (c Config) GraphQLIntrospection() bool {
	switch c.GraphQL.Introspection {
	case "on":
		return true
	case "off":
		return false
	}
	return !c.Production()
}

// Production reports whether Plaza runs with production safeguards.
func (c Config) Production() bool { return c.Env == "production" }

// MinJWTSecretLen is the shortest signing key accepted in production.
const MinJWTSecretLen = 32

// ErrHelp is returned when -h or --help was asked for; the usage has been printed and the
// command stops there (successfully).
var ErrHelp = flag.ErrHelp

// Error is an invalid setting. Its message is one line naming the variable.
type Error struct {
	Var string
	Msg string
}

func (e *Error) Error() string { return e.Var + ": " + e.Msg }

type option struct {
	env, flag, def, usage string
	set                   func(c *Config, v string) error
}

var options = []option{
	{"PLAZA_HTTP_ADDR", "http-addr", ":8080", "HTTP listen address", func(c *Config, v string) error {
		c.HTTPAddr = v
		return addr(v)
	}},
	{"PLAZA_GRPC_ADDR", "grpc-addr", ":50051", "gRPC listen address", func(c *Config, v string) error {
		c.GRPCAddr = v
		return addr(v)
	}},
	{"PLAZA_GRPC_TLS_CERT", "grpc-tls-cert", "", "PEM certificate file for gRPC over TLS (with PLAZA_GRPC_TLS_KEY; plaintext when both are empty)", func(c *Config, v string) error {
		c.GRPCTLSCert = v
		return nil
	}},
	{"PLAZA_GRPC_TLS_KEY", "grpc-tls-key", "", "PEM private key file of PLAZA_GRPC_TLS_CERT", func(c *Config, v string) error {
		c.GRPCTLSKey = v
		return nil
	}},
	{"PLAZA_DATA_DIR", "data-dir", "./data", "directory for the SQLite file and generated keys", func(c *Config, v string) error {
		if v == "" {
			return errors.New("expected a directory path, got an empty value")
		}
		c.DataDir = v
		return nil
	}},
	{"DATABASE_URL", "database-url", "", "PostgreSQL URL (postgres://user:pass@host:5432/db); empty uses SQLite in the data dir", func(c *Config, v string) error {
		c.DatabaseURL = v
		if v == "" {
			return nil
		}
		return serviceURL(v, "a postgres:// or postgresql:// URL", "postgres", "postgresql")
	}},
	{"REDIS_URL", "redis-url", "", "Redis URL (redis://host:6379/0); empty uses the in-process cache and bus", func(c *Config, v string) error {
		c.RedisURL = v
		if v == "" {
			return nil
		}
		return serviceURL(v, "a redis:// or rediss:// URL", "redis", "rediss")
	}},
	{"PLAZA_JWT_SECRET", "jwt-secret", "", "comma-separated JWT signing keys: the first signs, all verify (generated in development when empty)", func(c *Config, v string) error {
		c.JWTSecrets = list(v)
		return nil
	}},
	{"PLAZA_CORS_ORIGINS", "cors-origins", "", "comma-separated origins allowed by CORS (https://shop.example)", func(c *Config, v string) error {
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
	{"PLAZA_ENV", "env", "development", "development | production", func(c *Config, v string) error {
		if v != "development" && v != "production" {
			return fmt.Errorf("expected development or production, got %q", v)
		}
		c.Env = v
		return nil
	}},
	{"PLAZA_LOG_LEVEL", "log-level", "info", "debug | info | warn | error", func(c *Config, v string) error {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("expected debug, info, warn or error, got %q", v)
		}
		return nil
	}},
	{"PLAZA_RATE_LIMIT", "rate-limit", "20", "requests per second per client (0 turns rate limiting off)", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("expected a number of requests per second >= 0, got %q", v)
		}
		c.RateLimit = f
		return nil
	}},
	{"PLAZA_RATE_BURST", "rate-burst", "40", "requests a client may make at once before the rate applies", func(c *Config, v string) error {
		return wholeNumber(&c.RateBurst, v, "")
	}},
	{"PLAZA_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "how long in-flight requests may take to finish on shutdown", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("expected a positive duration like 30s, got %q", v)
		}
		c.ShutdownTimeout = d
		return nil
	}},
	{"PLAZA_QUERY_TIMEOUT", "query-timeout", "", "database time one list or search may take before it is stopped (503); default 250ms in production, 2s in development", func(c *Config, v string) error {
		if v == "" {
			return nil // set from the environment once PLAZA_ENV is known
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("expected a positive duration like 250ms, got %q", v)
		}
		c.QueryTimeout = d
		return nil
	}},
	{"PLAZA_SESSION_LIFETIME", "session-lifetime", "720h", "how long a login lasts in all: refresh-token rotation never extends it", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return fmt.Errorf("expected a duration of at least 1m like 720h, got %q", v)
		}
		c.SessionLifetime = d
		return nil
	}},
	{"PLAZA_DRAIN_DELAY", "drain-delay", "", "how long a stopping server keeps serving with /readyz failing before its listeners close (default 5s in production, 0 in development)", func(c *Config, v string) error {
		if v == "" {
			c.DrainDelay = -1 // the environment's default, set once PLAZA_ENV is known
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("expected a duration >= 0 like 5s, got %q", v)
		}
		c.DrainDelay = d
		return nil
	}},
	{"PLAZA_ADMIN_EMAIL", "admin-email", "", "email of an admin created at start if absent", func(c *Config, v string) error {
		c.AdminEmail = v
		return nil
	}},
	{"PLAZA_ADMIN_PASSWORD", "admin-password", "", "password of that admin", func(c *Config, v string) error {
		c.AdminPassword = v
		return nil
	}},
	{"PLAZA_DEBUG_ADDR", "debug-addr", "", "pprof listen address (off when empty; keep it on loopback)", func(c *Config, v string) error {
		c.DebugAddr = v
		if v == "" {
			return nil
		}
		return addr(v)
	}},
	{"PLAZA_METRICS_ADDR", "metrics-addr", "", "serve /metrics on this address instead of the public listener (off when empty)", func(c *Config, v string) error {
		c.MetricsAddr = v
		if v == "" {
			return nil
		}
		return addr(v)
	}},
	{"PLAZA_METRICS_TOKEN", "metrics-token", "", "bearer token /metrics on the public listener requires; in production without it or PLAZA_METRICS_ADDR, /metrics is not public", func(c *Config, v string) error {
		c.MetricsToken = v
		return nil
	}},
	{"PLAZA_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed", func(c *Config, v string) error {
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
	{"PLAZA_CACHE_SIZE", "cache-size", "50000", "entries kept in the in-process cache (with Redis: in the local tier)", func(c *Config, v string) error {
		return wholeNumber(&c.CacheSize, v, " of entries")
	}},
	{"PLAZA_PRODUCT_CACHE", "product-cache", "on", "on | off: off reads every product from the database, bypassing the cache (a benchmarking aid for uncached reads)", func(c *Config, v string) error {
		switch v {
		case "on":
			c.ProductCache = true
		case "off":
			c.ProductCache = false
		default:
			return fmt.Errorf("expected on or off, got %q", v)
		}
		return nil
	}},
	{"PLAZA_MAX_BODY_BYTES", "max-body-bytes", "1048576", "largest request body accepted, in bytes", func(c *Config, v string) error {
		return wholeNumber(&c.MaxBodyBytes, v, " of bytes")
	}},
	{"PLAZA_SQLITE_MMAP_BYTES", "sqlite-mmap-bytes", "1073741824", "bytes of the SQLite file read through a memory map (0 turns it off: do so on network filesystems, where an I/O error on a mapped page stops the process)", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > store.MaxSQLiteMmapBytes {
			return fmt.Errorf("expected a whole number of bytes from 0 to %d, got %q", store.MaxSQLiteMmapBytes, v)
		}
		c.SQLiteMmapBytes = n
		return nil
	}},
	{"PLAZA_WS_MAX_CONNS", "ws-max-conns", "20", "WebSocket connections one user may hold open per instance", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("expected a whole number of connections >= 1, got %q", v)
		}
		c.WSMaxConns = n
		return nil
	}},
	{"PLAZA_PRESENCE_TTL", "presence-ttl", "30s", "how long chat presence outlives a dead instance (heartbeats every third of it)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 300*time.Millisecond {
			return fmt.Errorf("expected a duration of at least 300ms like 30s, got %q", v)
		}
		c.PresenceTTL = d
		return nil
	}},
	{"PLAZA_GRAPHQL_MAX_DEPTH", "graphql-max-depth", "12", "deepest nesting of selections a GraphQL operation may have", func(c *Config, v string) error {
		return wholeNumber(&c.GraphQL.MaxDepth, v, " of levels")
	}},
	{"PLAZA_GRAPHQL_MAX_COMPLEXITY", "graphql-max-complexity", "5000", "highest GraphQL operation complexity (fields, times the page sizes they are in)", func(c *Config, v string) error {
		return wholeNumber(&c.GraphQL.MaxComplexity, v, "")
	}},
	{"PLAZA_GRAPHQL_MAX_ALIASES", "graphql-max-aliases", "30", "most aliased fields one GraphQL operation may have", func(c *Config, v string) error {
		return wholeNumber(&c.GraphQL.MaxAliases, v, " of aliases")
	}},
	{"PLAZA_GRAPHQL_APQ_CACHE_SIZE", "graphql-apq-cache-size", "1000", "automatic persisted queries kept per instance (least recently used dropped)", func(c *Config, v string) error {
		return wholeNumber(&c.GraphQL.APQCacheSize, v, " of queries")
	}},
	{"PLAZA_GRAPHQL_INTROSPECTION", "graphql-introspection", "auto", "auto (on in development, off in production) | on | off", func(c *Config, v string) error {
		if v != "auto" && v != "on" && v != "off" {
			return fmt.Errorf("expected auto, on or off, got %q", v)
		}
		c.GraphQL.Introspection = v
		return nil
	}},
	{"PLAZA_DISCOVERY", "discovery", "", "where instances are found: redis (the default with REDIS_URL), static:HTTP=GRPC,…, dns://NAME:PORT?grpc=PORT, dns+srv://NAME", func(c *Config, v string) error {
		c.Discovery.Spec = v
		if v == "" {
			return nil
		}
		return discovery.CheckSpec(v)
	}},
	{"PLAZA_DISCOVERY_TTL", "discovery-ttl", "10s", "an instance that stops heartbeating (every third of it) leaves the registry after this long", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 300*time.Millisecond {
			return fmt.Errorf("expected a duration of at least 300ms like 10s, got %q", v)
		}
		c.Discovery.TTL = d
		return nil
	}},
	{"PLAZA_ZONE", "zone", "", "zone (rack, availability zone) of this instance or gateway; gateways prefer instances of their own zone", func(c *Config, v string) error {
		c.Discovery.Zone = v
		return nil
	}},
	{"PLAZA_ADVERTISE_HOST", "advertise-host", "", "host announced in the registry (default: the listener's address, or the host name when listening on all interfaces)", func(c *Config, v string) error {
		c.Discovery.AdvertiseHost = v
		return nil
	}},
	{"PLAZA_GATEWAY_ADDR", "gateway-addr", ":8000", "plaza gateway: HTTP listen address", func(c *Config, v string) error {
		c.Gateway.HTTPAddr = v
		return addr(v)
	}},
	{"PLAZA_GATEWAY_GRPC_ADDR", "gateway-grpc-addr", ":8001", "plaza gateway: gRPC (h2c) listen address", func(c *Config, v string) error {
		c.Gateway.GRPCAddr = v
		return addr(v)
	}},
}

// Load reads the configuration of the command whose flag set is fs: it adds a flag for
// every setting to fs, which may already hold flags of the command's own, and parses args
// (what follows the command's name) with it. A setting given as a flag takes that value,
// else its variable through getenv, else its default. A command takes no positional
// arguments. On -h or --help it prints doc (a usage line and what the command does), the
// command's own flags and every setting to out, and returns ErrHelp: the command is to
// stop there.
func Load(fs *flag.FlagSet, doc string, args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { own = append(own, f) })
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	vals := make([]*string, len(options))
	for i, o := range options {
		vals[i] = fs.String(o.flag, o.def, o.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, doc)
			printFlags(out, own)
			Usage(out)
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
	if c.QueryTimeout == 0 {
		// Production bounds what one request may cost the database tightly; development
		// (and the test suite, under -race on a busy machine) leaves room for slow runs.
		c.QueryTimeout = 2 * time.Second
		if c.Production() {
			c.QueryTimeout = 250 * time.Millisecond
		}
	}
	if c.DrainDelay < 0 {
		c.DrainDelay = 0
		if c.Production() {
			c.DrainDelay = DefaultProductionDrainDelay
		}
	}
	return c, c.validate()
}

// DefaultProductionDrainDelay is PLAZA_DRAIN_DELAY in production: about what a Kubernetes
// preStop hook gives, long enough for load balancers probing every second or two to stop
// routing to an instance whose /readyz fails. Development stops at once.
const DefaultProductionDrainDelay = 5 * time.Second

// printFlags lists a command's own flags, before the settings every command shares.
func printFlags(out io.Writer, flags []*flag.Flag) {
	if len(flags) == 0 {
		return
	}
	fmt.Fprintln(out, "\nFlags:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, f := range flags {
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, name, usage)
	}
	tw.Flush()
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := strings.TrimSpace(getenv(key))
	return v, v != ""
}

func (c Config) validate() error {
	switch {
	case c.GRPCTLSCert != "" && c.GRPCTLSKey == "":
		return &Error{Var: "PLAZA_GRPC_TLS_KEY", Msg: "required when PLAZA_GRPC_TLS_CERT is set"}
	case c.GRPCTLSKey != "" && c.GRPCTLSCert == "":
		return &Error{Var: "PLAZA_GRPC_TLS_CERT", Msg: "required when PLAZA_GRPC_TLS_KEY is set"}
	case c.Discovery.Spec == "redis" && c.RedisURL == "":
		return &Error{Var: "PLAZA_DISCOVERY", Msg: "redis needs REDIS_URL"}
	}
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
func Usage(out io.Writer) {
	fmt.Fprint(out, "\nSettings (every flag can also be set by its environment variable; a flag wins):\n\n")
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

// wholeNumber parses v, a count of what unit names (" of bytes"), into *dst: at least 1
// and within T's range.
func wholeNumber[T int | int64](dst *T, v, unit string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || int64(T(n)) != n {
		return fmt.Errorf("expected a whole number%s >= 1, got %q", unit, v)
	}
	*dst = T(n)
	return nil
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
