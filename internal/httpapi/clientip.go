package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the peer address, or — when the peer is a trusted proxy — the right-most
// address of the forwarding chain that is not itself a trusted proxy. The chain is
// Forwarded (RFC 7239) when the request has one, else X-Forwarded-For: a trusted proxy
// must therefore set Forwarded or drop a client's (the gateway sets both). Untrusted
// peers cannot spoof it, and a chain that cannot be read where the client should be (a
// malformed header, an `unknown` or obfuscated node) yields the peer: a proxy's address
// is a safe answer, a guessed one is not.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return canonicalIP(peer, host)
	}
	var hops []string
	if fwd := strings.Join(r.Header.Values("Forwarded"), ","); strings.Trim(fwd, " \t,") != "" {
		hops = forwardedFor(fwd)
	} else {
		hops = strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxForwardedElements bounds the work one request's Forwarded header can ask for.
const maxForwardedElements = 64

// forwardedFor returns the node of each element's for= parameter, left to right, as an
// address ("192.0.2.1", "2001:db8::1") or, for a node that names none (`unknown`, an
// obfuscated identifier, no for=), "". A header that is not RFC 7239's syntax — where
// element boundaries cannot be trusted — gives nil, as does one of more than
// maxForwardedElements elements (empty ones too).
func forwardedFor(v string) []string {
	var nodes []string
	p := forwardedParser{s: v}
	for n := 1; ; n++ {
		node, empty, ok := p.element()
		if !ok || n > maxForwardedElements {
			return nil
		}
		if !empty { // a list may hold empty elements ("a, , b"): they are no hop
			nodes = append(nodes, node)
		}
		if p.i == len(p.s) {
			return nodes
		}
		if p.s[p.i] != ',' {
			return nil
		}
		p.i++
	}
}

// forwardedParser reads Forwarded = 1#forwarded-element, where
// forwarded-element = [ pair ] *( ";" [ pair ] ) and pair = token "=" value.
type forwardedParser struct {
	s string
	i int
}

func (p *forwardedParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// element reads one element up to (not including) the "," that ends it, and returns its
// for= node, and whether it was empty (only spaces). A parameter given twice makes the
// element malformed.
func (p *forwardedParser) element() (node string, empty, ok bool) {
	seen := map[string]bool{}
	empty = true
	for {
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] != ',' {
			empty = false
		}
		if p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != ';' {
			name := strings.ToLower(p.token())
			if name == "" || p.i == len(p.s) || p.s[p.i] != '=' {
				return "", false, false
			}
			p.i++
			value, ok := p.value()
			if !ok || seen[name] {
				return "", false, false
			}
			seen[name] = true
			if name == "for" {
				node = forwardedNode(value)
			}
			p.skipSpace()
		}
		if p.i == len(p.s) || p.s[p.i] == ',' {
			return node, empty, true
		}
		if p.s[p.i] != ';' {
			return "", false, false
		}
		p.i++
	}
}

func (p *forwardedParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// value is a token or a quoted-string (with its quoted-pairs undone).
func (p *forwardedParser) value() (string, bool) {
	if p.i == len(p.s) || p.s[p.i] != '"' {
		t := p.token()
		return t, t != ""
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), true
		case c == '\\' && p.i+1 < len(p.s):
			c = p.s[p.i+1]
			p.i++
		case c < ' ' && c != '\t' || c == 0x7f:
			return "", false
		}
		b.WriteByte(c)
		p.i++
	}
	return "", false // no closing quote
}

// isTokenChar: RFC 9110's tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// forwardedNode is the address of a node = nodename [ ":" node-port ], where nodename is
// an IPv4 address, "[" IPv6 "]", `unknown` or an obfuscated "_…" identifier; "" for
// anything but an address.
func forwardedNode(v string) string {
	host := v
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 || !validNodePort(v[end+1:]) {
			return ""
		}
		a, err := netip.ParseAddr(v[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return ""
		}
		return a.String()
	}
	if i := strings.IndexByte(v, ':'); i >= 0 {
		host = v[:i]
		if !validNodePort(v[i:]) {
			return ""
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return ""
	}
	return a.String()
}

// validNodePort: empty, or ":" and a port number or an obfuscated "_…" port.
func validNodePort(s string) bool {
	if s == "" {
		return true
	}
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	s = s[1:]
	if s[0] == '_' {
		return true
	}
	if len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ForwardedElement is the Forwarded element a proxy that is the edge sends on: the
// client's address as a node (IPv6 in brackets and quotes), the Host it asked for and the
// scheme. Every value that is not a token is quoted: left bare, a Host such as
// `x,for=198.51.100.1` (which net/http accepts) would add a forged element.
func ForwardedElement(clientIP, host, proto string) string {
	node := clientIP
	if a, err := netip.ParseAddr(clientIP); err == nil {
		if a = a.Unmap().WithZone(""); a.Is6() {
			node = "[" + a.String() + "]"
		} else {
			node = a.String()
		}
	}
	return "for=" + quoteForwarded(node) + ";host=" + quoteForwarded(host) + ";proto=" + quoteForwarded(proto)
}

// quoteForwarded writes v as a token or, when it is not one, a quoted-string.
func quoteForwarded(v string) string {
	token := v != ""
	for i := 0; i < len(v) && token; i++ {
		token = isTokenChar(v[i])
	}
	if token {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

// canonicalIP is a.String(), reusing host (the text a was parsed from) when it is already
// that, as it is for nearly every peer: no new string per request.
func canonicalIP(a netip.Addr, host string) string {
	if a.Is4() && strings.IndexByte(host, ':') < 0 {
		// Written as IPv4 (not IPv4-mapped IPv6), host parsed only in the canonical
		// dotted-decimal form (ParseAddr refuses leading zeros and short forms), so it
		// already is a.String().
		return host
	}
	var buf [64]byte
	if string(a.AppendTo(buf[:0])) == host {
		return host
	}
	return a.String()
}
