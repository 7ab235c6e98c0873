package plaza

import (
	"crypto/rand"
	"encoding/hex"
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

// NewRequestID returns a random request ID (32 hex digits).
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
