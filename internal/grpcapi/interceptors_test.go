package grpcapi

import (
	"net"
	"testing"

	"google.golang.org/grpc/peer"
)

// TestPeerIP: the client IP that logs and per-IP limits use is the host part of the peer
// address, an IPv4 client on a dual-stack listener included.
func TestPeerIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5000}, "192.0.2.7"}, // 16-byte form, as accepted on [::]
		{&net.TCPAddr{IP: net.IP{192, 0, 2, 7}.To4(), Port: 5000}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5000}, "2001:db8::1"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 5000}, "fe80::1%eth0"},
		{&net.TCPAddr{Port: 5000}, ""},
		{&net.UnixAddr{Name: "/run/plaza.sock", Net: "unix"}, "/run/plaza.sock"},
	} {
		ctx := peer.NewContext(t.Context(), &peer.Peer{Addr: tc.addr})
		if got := peerIP(ctx); got != tc.want {
			t.Errorf("peerIP(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
