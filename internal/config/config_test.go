package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// load reads the settings as `plaza serve` does.
func load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	return Load(flag.NewFlagSet("serve", flag.ContinueOnError), "Usage: plaza serve [flags]\n", args, getenv, out)
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(nil, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.GRPCAddr != ":50051" || c.DataDir != "./data" || c.Env != "development" ||
		c.ShutdownTimeout != 30*time.Second || c.MaxBodyBytes != 1<<20 || c.RateLimit <= 0 || c.DatabaseURL != "" || !c.ProductCache ||
		c.SQLiteMmapBytes != 1<<30 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFlagWinsOverEnvWinsOverDefault(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"PLAZA_HTTP_ADDR": "127.0.0.1:9000", "PLAZA_RATE_BURST": "7", "PLAZA_CORS_ORIGINS": "https://a.example, https://b.example"})
	c, err := load([]string{"--http-addr", "127.0.0.1:9100"}, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9100" || c.RateBurst != 7 || len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://b.example" {
		t.Fatalf("%+v", c)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"PLAZA_HTTP_ADDR": "nonsense"}, "PLAZA_HTTP_ADDR"},
		{map[string]string{"PLAZA_GRPC_ADDR": "1.2.3.4:99999"}, "PLAZA_GRPC_ADDR"},
		{map[string]string{"PLAZA_GRPC_TLS_CERT": "cert.pem"}, "PLAZA_GRPC_TLS_KEY"},
		{map[string]string{"PLAZA_GRPC_TLS_KEY": "key.pem"}, "PLAZA_GRPC_TLS_CERT"},
		{map[string]string{"PLAZA_ENV": "staging"}, "PLAZA_ENV"},
		{map[string]string{"PLAZA_LOG_LEVEL": "loud"}, "PLAZA_LOG_LEVEL"},
		{map[string]string{"PLAZA_RATE_LIMIT": "fast"}, "PLAZA_RATE_LIMIT"},
		{map[string]string{"PLAZA_RATE_BURST": "0"}, "PLAZA_RATE_BURST"},
		{map[string]string{"PLAZA_SHUTDOWN_TIMEOUT": "soon"}, "PLAZA_SHUTDOWN_TIMEOUT"},
		{map[string]string{"PLAZA_CORS_ORIGINS": "shop.example"}, "PLAZA_CORS_ORIGINS"},
		{map[string]string{"PLAZA_TRUSTED_PROXIES": "10.0.0.0/99"}, "PLAZA_TRUSTED_PROXIES"},
		{map[string]string{"PLAZA_MAX_BODY_BYTES": "-1"}, "PLAZA_MAX_BODY_BYTES"},
		{map[string]string{"PLAZA_CACHE_SIZE": "0"}, "PLAZA_CACHE_SIZE"},
		{map[string]string{"PLAZA_PRODUCT_CACHE": "false"}, "PLAZA_PRODUCT_CACHE"},
		{map[string]string{"PLAZA_SQLITE_MMAP_BYTES": "-1"}, "PLAZA_SQLITE_MMAP_BYTES"},
		{map[string]string{"PLAZA_SQLITE_MMAP_BYTES": "1GiB"}, "PLAZA_SQLITE_MMAP_BYTES"},
		{map[string]string{"PLAZA_SQLITE_MMAP_BYTES": "4294967296"}, "PLAZA_SQLITE_MMAP_BYTES"},
		{map[string]string{"PLAZA_DEBUG_ADDR": "x"}, "PLAZA_DEBUG_ADDR"},
		{map[string]string{"PLAZA_DISCOVERY": "etcd://x"}, "PLAZA_DISCOVERY"},
		{map[string]string{"PLAZA_DISCOVERY": "redis"}, "PLAZA_DISCOVERY"},
		{map[string]string{"PLAZA_DISCOVERY_TTL": "10ms"}, "PLAZA_DISCOVERY_TTL"},
		{map[string]string{"PLAZA_GATEWAY_ADDR": "8000"}, "PLAZA_GATEWAY_ADDR"},
		{map[string]string{"DATABASE_URL": "mysql://u:hunter2@h/db"}, "DATABASE_URL"},
		{map[string]string{"REDIS_URL": "http://u:hunter2@h:6379"}, "REDIS_URL"},
		{map[string]string{"DATABASE_URL": "postgres://u:hunter2@h:port/db"}, "DATABASE_URL"},
		{map[string]string{"PLAZA_ENV": "production"}, "PLAZA_JWT_SECRET"},
		{map[string]string{"PLAZA_ENV": "production", "PLAZA_JWT_SECRET": "short"}, "PLAZA_JWT_SECRET"},
		{map[string]string{"PLAZA_ENV": "production", "PLAZA_JWT_SECRET": strings.Repeat("k", 32), "PLAZA_CORS_ORIGINS": "*"}, "PLAZA_CORS_ORIGINS"},
	}
	for _, c := range cases {
		_, err := load(nil, env(c.vars), nil)
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Var != c.want {
			t.Errorf("%v: got %v, want an error naming %s", c.vars, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: error leaks the password: %v", c.vars, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
	}
}

func TestProductionAcceptsGoodSettings(t *testing.T) {
	t.Parallel()
	_, err := load(nil, env(map[string]string{"PLAZA_ENV": "production",
		"PLAZA_JWT_SECRET": strings.Repeat("a", 32) + "," + strings.Repeat("b", 40), "PLAZA_CORS_ORIGINS": "https://shop.example"}), nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestHelpListsEveryVariableWithDefault(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := load([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, o := range options {
		if !strings.Contains(out.String(), o.env) || !strings.Contains(out.String(), "--"+o.flag) {
			t.Errorf("help lacks %s / --%s", o.env, o.flag)
		}
	}
	if !strings.Contains(out.String(), ":8080") || !strings.Contains(out.String(), "30s") {
		t.Error("help lacks defaults")
	}
}

// TestHelpListsTheCommandsOwnFlags: a command's flags are parsed by the same flag set as
// the settings and listed in its help.
func TestHelpListsTheCommandsOwnFlags(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	n := fs.Int("products", 0, "how many `N` products to add")
	var out bytes.Buffer
	if _, err := Load(fs, "Usage: plaza seed\n", []string{"--products", "5", "-h"}, env(nil), &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(out.String(), "--products N") || !strings.Contains(out.String(), "PLAZA_DATA_DIR") {
		t.Fatalf("help:\n%s", out.String())
	}
	fs = flag.NewFlagSet("seed", flag.ContinueOnError)
	n = fs.Int("products", 0, "how many products to add")
	c, err := Load(fs, "", []string{"--products=7", "--data-dir", "/tmp/x"}, env(nil), nil)
	if err != nil || *n != 7 || c.DataDir != "/tmp/x" {
		t.Fatalf("Load = %+v, %v; products %d", c, err, *n)
	}
	if _, err := Load(flag.NewFlagSet("seed", flag.ContinueOnError), "", []string{"--products=7"}, env(nil), nil); err == nil {
		t.Fatal("an unknown flag was accepted")
	}
}

// TestEnvExampleDocumentsEverySetting: .env.example, the file an operator copies, names
// every variable Plaza reads, so a new setting cannot ship undocumented.
func TestEnvExampleDocumentsEverySetting(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range options {
		if !strings.Contains(string(b), "\n"+o.env+"=") {
			t.Errorf(".env.example does not document %s", o.env)
		}
	}
}

// TestQueryTimeoutFollowsTheEnvironment: production bounds a list's database time tightly,
// development leaves room; an explicit value wins in both.
func TestQueryTimeoutFollowsTheEnvironment(t *testing.T) {
	t.Parallel()
	prod := map[string]string{"PLAZA_ENV": "production", "PLAZA_JWT_SECRET": strings.Repeat("k", 32)}
	for _, c := range []struct {
		vars map[string]string
		want time.Duration
	}{
		{nil, 2 * time.Second},
		{prod, 250 * time.Millisecond},
		{map[string]string{"PLAZA_QUERY_TIMEOUT": "1s"}, time.Second},
		{map[string]string{"PLAZA_ENV": "production", "PLAZA_JWT_SECRET": strings.Repeat("k", 32), "PLAZA_QUERY_TIMEOUT": "100ms"}, 100 * time.Millisecond},
	} {
		cfg, err := load(nil, env(c.vars), nil)
		if err != nil || cfg.QueryTimeout != c.want {
			t.Errorf("%v: QueryTimeout %v, %v; want %v", c.vars, cfg.QueryTimeout, err, c.want)
		}
	}
	if _, err := load(nil, env(map[string]string{"PLAZA_QUERY_TIMEOUT": "-1s"}), nil); err == nil || !strings.Contains(err.Error(), "PLAZA_QUERY_TIMEOUT") {
		t.Errorf("a negative timeout: %v", err)
	}
}

// TestDrainDelayDefaultsByEnvironment: production waits for load balancers by default,
// development stops at once, and a value given wins in both.
func TestDrainDelayDefaultsByEnvironment(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("k", MinJWTSecretLen)
	cases := []struct {
		vars map[string]string
		want time.Duration
	}{
		{map[string]string{}, 0},
		{map[string]string{"PLAZA_ENV": "production", "PLAZA_JWT_SECRET": secret}, 5 * time.Second},
		{map[string]string{"PLAZA_ENV": "production", "PLAZA_JWT_SECRET": secret, "PLAZA_DRAIN_DELAY": "0s"}, 0},
		{map[string]string{"PLAZA_DRAIN_DELAY": "2s"}, 2 * time.Second},
	}
	for _, c := range cases {
		cfg, err := load(nil, env(c.vars), nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DrainDelay != c.want {
			t.Errorf("%v: DrainDelay %s, want %s", c.vars, cfg.DrainDelay, c.want)
		}
	}
	if _, err := load(nil, env(map[string]string{"PLAZA_DRAIN_DELAY": "-1s"}), nil); err == nil || !strings.Contains(err.Error(), "PLAZA_DRAIN_DELAY") {
		t.Errorf("a negative delay: %v", err)
	}
}
