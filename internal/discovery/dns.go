package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resolver is the part of net.Resolver DNS uses; tests point a net.Resolver at a server
// of their own.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// DNSOptions configure NewDNS.
type DNSOptions struct {
	// Name is resolved: its A and AAAA records (a headless Service's pod IPs), or with SRV
	// its _http._tcp and _grpc._tcp records (ports included).
	Name string
	SRV  bool
	// HTTPPort and GRPCPort complete A/AAAA addresses (ignored with SRV).
	HTTPPort, GRPCPort int
	// Interval is how long an answer is used before Name is resolved again (default 5s).
	Interval time.Duration
	Resolver Resolver // default net.DefaultResolver
}

// DNS lists the instances a DNS name resolves to. Instances carry addresses only: DNS has
// no version, zone or start time to give.
type DNS struct {
	opts DNSOptions

	mu       sync.Mutex
	last     []Instance
	resolved time.Time
}

// NewDNS resolves opts.Name.
func NewDNS(opts DNSOptions) *DNS {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	return &DNS{opts: opts}
}

// Instances resolves the name again when the last answer is older than the interval. A
// failed resolution returns the error and keeps the last answer for the next call; an
// answer without records (NXDOMAIN included) is an empty list, not an error: every
// instance is gone.
func (d *DNS) Instances(ctx context.Context) ([]Instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.resolved.IsZero() && time.Since(d.resolved) < d.opts.Interval {
		return append([]Instance(nil), d.last...), nil
	}
	var is []Instance
	var err error
	if d.opts.SRV {
		is, err = d.srv(ctx)
	} else {
		is, err = d.addrs(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("discovery: resolve %s: %w", d.opts.Name, err)
	}
	d.last, d.resolved = sortByID(is), time.Now()
	return append([]Instance(nil), d.last...), nil
}

func (d *DNS) addrs(ctx context.Context) ([]Instance, error) {
	ips, err := d.opts.Resolver.LookupIPAddr(ctx, d.opts.Name)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	is := make([]Instance, 0, len(ips))
	for _, ip := range ips {
		host := ip.IP.String()
		inst := Instance{HTTPAddr: net.JoinHostPort(host, strconv.Itoa(d.opts.HTTPPort))}
		if d.opts.GRPCPort > 0 {
			inst.GRPCAddr = net.JoinHostPort(host, strconv.Itoa(d.opts.GRPCPort))
		}
		inst.ID = inst.HTTPAddr
		is = append(is, inst)
	}
	return is, nil
}

// srv pairs each _http._tcp target with the _grpc._tcp record of the same target, and
// resolves the targets (a headless Service's pod names) so instances are named by address
// in both modes.
func (d *DNS) srv(ctx context.Context) ([]Instance, error) {
	_, web, err := d.opts.Resolver.LookupSRV(ctx, "http", "tcp", d.opts.Name)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, rpc, err := d.opts.Resolver.LookupSRV(ctx, "grpc", "tcp", d.opts.Name)
	if err != nil && !notFound(err) {
		return nil, err
	}
	grpcPort := map[string]uint16{}
	for _, s := range rpc {
		grpcPort[s.Target] = s.Port
	}
	is := make([]Instance, 0, len(web))
	for _, s := range web {
		host := strings.TrimSuffix(s.Target, ".")
		if ips, err := d.opts.Resolver.LookupIPAddr(ctx, s.Target); err == nil && len(ips) > 0 {
			host = ips[0].IP.String()
		}
		inst := Instance{HTTPAddr: net.JoinHostPort(host, strconv.Itoa(int(s.Port)))}
		if p, ok := grpcPort[s.Target]; ok {
			inst.GRPCAddr = net.JoinHostPort(host, strconv.Itoa(int(p)))
		}
		inst.ID = inst.HTTPAddr
		is = append(is, inst)
	}
	return is, nil
}

func notFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
