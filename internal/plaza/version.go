package plaza

// Expect is a write's precondition on the stored version of what it changes. The zero
// value accepts any version: the service may then retry a write that raced another on the
// new version. Transports build one from what their clients send (an HTTP If-Match, a gRPC
// etag field, a GraphQL ifMatch argument), so every transport reaches the same check.
type Expect struct {
	set      bool
	versions []int64
}

// ExpectVersion accepts only the given versions. With none, nothing matches: a
// precondition naming no version this resource can have always fails.
func ExpectVersion(versions ...int64) Expect { return Expect{set: true, versions: versions} }

// IsSet reports whether the write is conditional. A conditional write that loses a race is
// a precondition failure, never retried: the client decided on the version it read.
func (e Expect) IsSet() bool { return e.set }

// Allows reports whether a write may apply to stored version v.
func (e Expect) Allows(v int64) bool {
	if !e.set {
		return true
	}
	for _, want := range e.versions {
		if want == v {
			return true
		}
	}
	return false
}
