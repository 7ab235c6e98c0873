package plaza

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

// ValidRequestID is the rule every transport applies to an incoming X-Request-ID (and
// x-request-id metadata): up to 128 letters, digits, '-', '_' or '.'. Anything else is
// replaced, so a client cannot inject into log lines.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// NewRequestID returns a random request ID (32 hex digits). A request ID correlates log
// lines and is echoed to the client; it is not a secret, so it comes from the runtime's
// fast per-thread generator (ChaCha8, seeded by the OS) rather than a getrandom call per
// request.
func NewRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}
