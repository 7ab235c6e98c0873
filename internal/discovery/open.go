package discovery

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Open returns the registry spec names (PLAZA_DISCOVERY):
//
//	redis                                   the instances' own registrations (needs client)
//	static:HTTP[=GRPC],HTTP[=GRPC]…         a fixed list
//	dns://NAME:HTTPPORT?grpc=PORT&interval=5s   A/AAAA records of NAME
//	dns+srv://NAME?interval=5s              SRV records _http._tcp.NAME and _grpc._tcp.NAME
func Open(spec string, client redis.UniversalClient, log *slog.Logger) (Registry, error) {
	switch {
	case spec == "redis":
		if client == nil {
			return nil, fmt.Errorf("redis discovery needs REDIS_URL")
		}
		return NewRedis(client, "", log), nil
	case strings.HasPrefix(spec, "static:"):
		is, err := ParseStatic(strings.TrimPrefix(spec, "static:"))
		if err != nil {
			return nil, err
		}
		return NewStatic(is), nil
	case strings.HasPrefix(spec, "dns://"), strings.HasPrefix(spec, "dns+srv://"):
		opts, err := parseDNS(spec)
		if err != nil {
			return nil, err
		}
		return NewDNS(opts), nil
	}
	return nil, fmt.Errorf("expected redis, static:…, dns://… or dns+srv://…, got %q", spec)
}

// CheckSpec reports whether Open would accept spec (without a Redis client to hand).
func CheckSpec(spec string) error {
	if spec == "redis" {
		return nil
	}
	_, err := Open(spec, nil, nil)
	return err
}

func parseDNS(spec string) (DNSOptions, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Hostname() == "" {
		return DNSOptions{}, fmt.Errorf("expected dns://NAME:PORT or dns+srv://NAME, got %q", spec)
	}
	opts := DNSOptions{Name: u.Hostname(), SRV: u.Scheme == "dns+srv"}
	if !opts.SRV {
		if opts.HTTPPort, err = strconv.Atoi(u.Port()); err != nil || opts.HTTPPort < 1 || opts.HTTPPort > 65535 {
			return DNSOptions{}, fmt.Errorf("expected dns://NAME:HTTPPORT, got %q", spec)
		}
	}
	q := u.Query()
	if g := q.Get("grpc"); g != "" {
		if opts.GRPCPort, err = strconv.Atoi(g); err != nil || opts.GRPCPort < 1 || opts.GRPCPort > 65535 {
			return DNSOptions{}, fmt.Errorf("expected grpc=PORT, got %q", g)
		}
	}
	if i := q.Get("interval"); i != "" {
		if opts.Interval, err = time.ParseDuration(i); err != nil || opts.Interval <= 0 {
			return DNSOptions{}, fmt.Errorf("expected interval=DURATION like 5s, got %q", i)
		}
	}
	return opts, nil
}
