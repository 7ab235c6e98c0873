package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"plaza/internal/config"
	"plaza/internal/discovery"
	"plaza/internal/plaza"
)

// announce registers this instance in the Redis registry (when discovery is Redis, the
// default with REDIS_URL) and keeps it there while ready. With a static list or DNS the
// platform says where instances are, and there is nothing to announce: it returns nil.
func announce(ctx context.Context, cfg config.Config, d *deps, httpAddr, grpcAddr net.Addr, ready func(context.Context) bool, log *slog.Logger) (*discovery.Announcement, error) {
	if d.redis == nil || (cfg.Discovery.Spec != "" && cfg.Discovery.Spec != "redis") {
		return nil, nil
	}
	host, err := advertiseHost(cfg, httpAddr)
	if err != nil {
		return nil, err
	}
	inst := discovery.Instance{
		ID:        plaza.NewID(),
		HTTPAddr:  net.JoinHostPort(host, port(httpAddr)),
		GRPCAddr:  net.JoinHostPort(host, port(grpcAddr)),
		Version:   cfg.Version,
		Zone:      cfg.Discovery.Zone,
		StartedAt: time.Now().UTC().Truncate(time.Second),
	}
	regCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	a, err := discovery.Announce(regCtx, discovery.NewRedis(d.redis, "", log), inst, cfg.Discovery.TTL, ready, log)
	if err != nil {
		return nil, fmt.Errorf("announcing this instance in the registry: %w", err)
	}
	log.Info("instance registered", "id", inst.ID, "http_addr", inst.HTTPAddr, "grpc_addr", inst.GRPCAddr, "zone", inst.Zone, "ttl", cfg.Discovery.TTL.String())
	return a, nil
}

// advertiseHost is the host others dial: PLAZA_ADVERTISE_HOST, else the listener's own
// address, else — listening on every interface, where ":8080" names no host — this
// machine's name.
func advertiseHost(cfg config.Config, a net.Addr) (string, error) {
	if cfg.Discovery.AdvertiseHost != "" {
		return cfg.Discovery.AdvertiseHost, nil
	}
	if tcp, ok := a.(*net.TCPAddr); ok && tcp.IP != nil && !tcp.IP.IsUnspecified() {
		return tcp.IP.String(), nil
	}
	name, err := os.Hostname()
	if err != nil {
		return "", &config.Error{Var: "PLAZA_ADVERTISE_HOST", Msg: "required: listening on all interfaces and the host name is unknown: " + err.Error()}
	}
	return name, nil
}

func port(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return strconv.Itoa(tcp.Port)
	}
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
