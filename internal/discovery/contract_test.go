package discovery_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"plaza/internal/discovery"
	"plaza/internal/redistest"
)

// backend opens one registry for a test and returns it with a function that makes the
// backend hold exactly the given instances (as registrations, a new list, DNS records).
type backend func(t *testing.T) (discovery.Registry, func(is []discovery.Instance))

// TestRegistryContract runs one body against every backend: a reader sees instances
// arrive and leave.
func TestRegistryContract(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]backend{
		"static":  openStatic,
		"redis":   openRedis,
		"dns":     openDNS(false),
		"dns-srv": openDNS(true),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg, set := open(t)
			ctx := t.Context()
			a := discovery.Instance{ID: "127.0.0.1:8081", HTTPAddr: "127.0.0.1:8081", GRPCAddr: "127.0.0.1:9081"}
			b := discovery.Instance{ID: "127.0.0.2:8081", HTTPAddr: "127.0.0.2:8081", GRPCAddr: "127.0.0.2:9081"}
			c := discovery.Instance{ID: "127.0.0.3:8081", HTTPAddr: "127.0.0.3:8081", GRPCAddr: "127.0.0.3:9081"}

			set([]discovery.Instance{c, a, b})
			waitFor(t, reg, "a,b,c", a, b, c)
			set([]discovery.Instance{a, c})
			waitFor(t, reg, "b gone", a, c)
			set(nil)
			waitFor(t, reg, "none")
			if _, err := reg.Instances(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// waitFor polls until the registry holds exactly want (IDs and addresses, in ID order);
// a re-resolving backend may answer from its last resolution for an interval first.
func waitFor(t *testing.T, reg discovery.Registry, what string, want ...discovery.Instance) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got []discovery.Instance
	for {
		var err error
		got, err = reg.Instances(t.Context())
		if err == nil && same(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: registry holds %+v (err %v), want %+v", what, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func same(got, want []discovery.Instance) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].HTTPAddr != want[i].HTTPAddr || got[i].GRPCAddr != want[i].GRPCAddr {
			return false
		}
	}
	return true
}

func openStatic(t *testing.T) (discovery.Registry, func([]discovery.Instance)) {
	s := discovery.NewStatic(nil)
	return s, s.Set
}

// openRedis registers and deregisters on a fresh prefix of the shared test Redis.
func openRedis(t *testing.T) (discovery.Registry, func([]discovery.Instance)) {
	client := redistest.Client(t, redistest.URL(t))
	r := discovery.NewRedis(client, "test:discovery:"+strconv.FormatInt(time.Now().UnixNano(), 36)+":", nil)
	var mu sync.Mutex
	held := map[string]bool{}
	return r, func(is []discovery.Instance) {
		mu.Lock()
		defer mu.Unlock()
		keep := map[string]bool{}
		for _, inst := range is {
			if err := r.Register(t.Context(), inst, time.Minute); err != nil {
				t.Fatal(err)
			}
			keep[inst.ID] = true
		}
		for id := range held {
			if !keep[id] {
				if err := r.Deregister(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			}
		}
		held = keep
	}
}

// openDNS serves the instances as records from a DNS server of the test's own on
// loopback, which a net.Resolver is pointed at; the registry re-resolves every 50 ms.
func openDNS(srv bool) backend {
	return func(t *testing.T) (discovery.Registry, func([]discovery.Instance)) {
		z := startZone(t, "plaza.test.")
		reg := discovery.NewDNS(discovery.DNSOptions{Name: "plaza.test", SRV: srv, HTTPPort: 8081, GRPCPort: 9081,
			Interval: 50 * time.Millisecond, Resolver: z.resolver()})
		return reg, z.set
	}
}

// zone is a tiny authoritative server: A records of the name, and SRV records
// _http._tcp and _grpc._tcp pointing at a host name per instance.
type zone struct {
	t    *testing.T
	name string
	addr string

	mu        sync.Mutex
	instances []discovery.Instance
}

func startZone(t *testing.T, name string) *zone {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zone{t: t, name: name, addr: pc.LocalAddr().String()}
	started := make(chan struct{})
	server := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve), NotifyStartedFunc: func() { close(started) }}
	go server.ActivateAndServe()
	<-started
	t.Cleanup(func() { server.Shutdown() })
	return z
}

func (z *zone) set(is []discovery.Instance) {
	z.mu.Lock()
	z.instances = is
	z.mu.Unlock()
}

func (z *zone) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", z.addr)
	}}
}

// hostOf names an instance's host in SRV targets: host-127-0-0-1.plaza.test.
func (z *zone) hostOf(inst discovery.Instance) (string, string, uint16) {
	host, port, _ := net.SplitHostPort(inst.HTTPAddr)
	p, _ := strconv.Atoi(port)
	return "host-" + strings.ReplaceAll(host, ".", "-") + "." + z.name, host, uint16(p)
}

func (z *zone) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	z.mu.Lock()
	is := z.instances
	z.mu.Unlock()
	for _, q := range req.Question {
		hdr := func(typ uint16) dns.RR_Header {
			return dns.RR_Header{Name: q.Name, Rrtype: typ, Class: dns.ClassINET, Ttl: 0}
		}
		for _, inst := range is {
			target, ip, port := z.hostOf(inst)
			_, gport, _ := net.SplitHostPort(inst.GRPCAddr)
			gp, _ := strconv.Atoi(gport)
			switch {
			case q.Qtype == dns.TypeA && q.Name == z.name:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(ip)})
			case q.Qtype == dns.TypeA && q.Name == target:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(ip)})
			case q.Qtype == dns.TypeSRV && q.Name == "_http._tcp."+z.name:
				m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: 0, Weight: 10, Port: port, Target: target})
			case q.Qtype == dns.TypeSRV && q.Name == "_grpc._tcp."+z.name:
				m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: 0, Weight: 10, Port: uint16(gp), Target: target})
			}
		}
	}
	if err := w.WriteMsg(m); err != nil {
		z.t.Log(fmt.Sprintf("dns: %v", err))
	}
}
