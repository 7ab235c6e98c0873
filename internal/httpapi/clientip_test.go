package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIPReadsForwarded(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name      string
		peer      string
		forwarded []string // header lines
		xff       string
		want      string
	}{
		{"one element", "10.0.0.1:5555", []string{"for=203.0.113.9;proto=https;host=shop.example"}, "", "203.0.113.9"},
		{"an untrusted peer as it connected", "203.0.113.7:5555", nil, "", "203.0.113.7"},
		{"an untrusted IPv4-mapped peer", "[::ffff:203.0.113.7]:5555", nil, "", "203.0.113.7"},
		{"an untrusted IPv6 peer in its canonical form", "[2001:DB8:0:0::1]:5555", nil, "", "2001:db8::1"},
		{"quoted IPv4 with port", "10.0.0.1:5555", []string{`for="203.0.113.9:4711"`}, "", "203.0.113.9"},
		{"quoted IPv6", "10.0.0.1:5555", []string{`for="[2001:db8::17]"`}, "", "2001:db8::17"},
		{"quoted IPv6 with port", "10.0.0.1:5555", []string{`For="[2001:db8:cafe::17]:4711"`}, "", "2001:db8:cafe::17"},
		{"IPv4-mapped IPv6", "10.0.0.1:5555", []string{`for="[::ffff:203.0.113.9]"`}, "", "203.0.113.9"},
		{"the right-most untrusted of several elements", "10.0.0.1:5555",
			[]string{`for=198.51.100.1, for=203.0.113.9;by=10.0.0.2, for="[fd00::3]", for=10.9.9.9`}, "", "203.0.113.9"},
		{"several header lines are one list", "10.0.0.1:5555",
			[]string{"for=198.51.100.1", "for=203.0.113.9", "for=10.2.2.2"}, "", "203.0.113.9"},
		{"empty list elements are no hop", "10.0.0.1:5555", []string{"for=203.0.113.9, ,", ", for=10.2.2.2"}, "", "203.0.113.9"},
		{"a comma inside a quoted value is no boundary", "10.0.0.1:5555",
			[]string{`for=203.0.113.9;host="a,for=198.51.100.66"`}, "", "203.0.113.9"},
		{"escaped quote inside a quoted value", "10.0.0.1:5555",
			[]string{`for=203.0.113.9;host="a\",for=198.51.100.66"`}, "", "203.0.113.9"},
		{"preferred to X-Forwarded-For", "10.0.0.1:5555", []string{"for=203.0.113.9"}, "198.51.100.4", "203.0.113.9"},
		{"X-Forwarded-For without Forwarded", "10.0.0.1:5555", nil, "198.51.100.4, 10.3.3.3", "198.51.100.4"},
		{"an empty Forwarded is none", "10.0.0.1:5555", []string{" "}, "198.51.100.4", "198.51.100.4"},
		{"only trusted hops: the peer", "10.0.0.1:5555", []string{"for=10.1.1.1, for=10.2.2.2"}, "", "10.0.0.1"},
		{"untrusted peer: headers ignored", "198.51.100.7:5555", []string{"for=203.0.113.9"}, "203.0.113.10", "198.51.100.7"},
		{"unknown where the client should be", "10.0.0.1:5555", []string{"for=203.0.113.9, for=unknown, for=10.2.2.2"}, "", "10.0.0.1"},
		{"obfuscated where the client should be", "10.0.0.1:5555", []string{"for=203.0.113.9, for=_hidden, for=10.2.2.2"}, "", "10.0.0.1"},
		{"obfuscated port", "10.0.0.1:5555", []string{`for="203.0.113.9:_p1"`}, "", "203.0.113.9"},
		{"no for= in the client's element", "10.0.0.1:5555", []string{"for=203.0.113.9, proto=https"}, "", "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.forwarded {
				r.Header.Add("Forwarded", v)
			}
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := clientIP(r, proxies); got != tt.want {
				t.Fatalf("Forwarded %q, X-Forwarded-For %q from %s: client %q, want %q", tt.forwarded, tt.xff, tt.peer, got, tt.want)
			}
		})
	}
}

// TestClientIPHostileForwarded: a Forwarded header that is not RFC 7239's syntax is not
// read at all (its element boundaries cannot be trusted), so the client is the trusted
// peer itself, never an address picked out of the mess, and nothing panics.
func TestClientIPHostileForwarded(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	hostile := []string{
		`for=203.0.113.9;for=198.51.100.1`, // a parameter twice in one element
		`for=203.0.113.9;FOR=198.51.100.1`,
		`for="203.0.113.9`, // no closing quote
		`for="203.0.113.9\`,
		`for=[2001:db8::1]`,        // IPv6 must be quoted
		`for=203.0.113.9:80`,       // so must a port
		`for="[2001:db8::1"`,       // no closing bracket
		`for="[2001:db8::1]:http"`, // a port is digits
		`for="[fe80::1%eth0]"`,
		`for="203.0.113.9:123456"`,
		`for="[203.0.113.9]"`, // IPv4 in brackets
		`for`, `=203.0.113.9`, `for=`, `for=;`, `;;for`, `for==1.2.3.4`,
		`for=203.0.113.9 proto=http`, // no separator
		"for=\"203.0.113.9\x00\"",
		"for=203.0.113.9\x7f",
		`for=203.0.113.9, "for=198.51.100.1"`,
		`for=2001:db8::1`,
		`for="::1"`, // an IPv6 address without its brackets
		strings.Repeat("for=203.0.113.9, ", 65) + "for=10.1.1.1", // more elements than are read
		strings.Repeat(",", 100) + "for=203.0.113.9",
		strings.Repeat(`for="\`, 1000),
		"for=" + strings.Repeat("9", 100000),
		"\xff\xfe",
	}
	for _, v := range hostile {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:5555"
		r.Header.Set("Forwarded", v)
		r.Header.Set("X-Forwarded-For", "198.51.100.200")
		if got := clientIP(r, proxies); got != "10.0.0.1" {
			name := v
			if len(name) > 60 {
				name = name[:60] + "…"
			}
			t.Errorf("Forwarded %q: client %q, want the peer 10.0.0.1", name, got)
		}
	}
}

func FuzzClientIPForwarded(f *testing.F) {
	for _, s := range []string{`for=203.0.113.9`, `for="[2001:db8::1]:80";proto=https, for=10.0.0.2`, `for=unknown`, `for="a\"b"`} {
		f.Add(s)
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:5555"
		r.Header.Set("Forwarded", v)
		got, err := netip.ParseAddr(clientIP(r, proxies))
		if err != nil {
			t.Fatalf("Forwarded %q: client %v is no address", v, err)
		}
		if got != netip.MustParseAddr("10.0.0.1") && isTrusted(got, proxies) {
			t.Fatalf("Forwarded %q: client %s is a trusted proxy but not the peer", v, got)
		}
	})
}

// TestForwardedElementReadsBack: what the gateway writes, an instance reads back as the
// client's address, whatever Host the client sent.
func TestForwardedElementReadsBack(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, tt := range []struct{ client, host, want string }{
		{"203.0.113.9", "shop.example", `for=203.0.113.9;host=shop.example;proto=https`},
		{"2001:db8::1", "shop.example:8443", `for="[2001:db8::1]";host="shop.example:8443";proto=https`},
		{"::ffff:203.0.113.9", "[2001:db8::2]:80", `for=203.0.113.9;host="[2001:db8::2]:80";proto=https`},
		{"203.0.113.9", "x,for=198.51.100.1", `for=203.0.113.9;host="x,for=198.51.100.1";proto=https`},
		{"203.0.113.9", `x",for=198.51.100.1;a="`, `for=203.0.113.9;host="x\",for=198.51.100.1;a=\"";proto=https`},
		{"203.0.113.9", "", `for=203.0.113.9;host="";proto=https`},
	} {
		got := ForwardedElement(tt.client, tt.host, "https")
		if got != tt.want {
			t.Errorf("ForwardedElement(%q, %q) = %s, want %s", tt.client, tt.host, got, tt.want)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "127.0.0.1:5555"
		r.Header.Set("Forwarded", got)
		if ip, want := clientIP(r, proxies), netip.MustParseAddr(tt.client).Unmap().String(); ip != want {
			t.Errorf("Forwarded %s read back as %s, want %s", got, ip, want)
		}
	}
}
