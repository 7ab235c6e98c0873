// Package etag turns a resource's version into the opaque entity tag clients see, and the
// tags a client sends back into the service's precondition (plaza.Expect). Every transport
// that offers conditional writes (an HTTP If-Match, a gRPC etag field, a GraphQL ifMatch
// argument) goes through it, so they all reach the same check.
package etag

import (
	"strconv"
	"strings"

	"plaza/internal/plaza"
)

// Make is the strong entity tag of version of resource id, quotes included.
func Make(id string, version int64) string {
	return `"` + id + "-v" + strconv.FormatInt(version, 10) + `"`
}

// Expect is the precondition that tags (each "*" or a quoted tag, possibly W/-prefixed)
// place on resource id. No tags: no precondition. "*": any current version. A strong tag
// of this resource: its version. Weak tags, tags of other resources and anything else
// match nothing (If-Match uses the strong comparison, RFC 9110 13.1.1).
func Expect(id string, tags ...string) plaza.Expect {
	if len(tags) == 0 {
		return plaza.Expect{}
	}
	var versions []int64
	for _, t := range tags {
		if t == "*" {
			return plaza.Expect{}
		}
		if v, ok := versionOf(id, t); ok {
			versions = append(versions, v)
		}
	}
	return plaza.ExpectVersion(versions...)
}

// versionOf reads the version out of a strong tag made by Make for id.
func versionOf(id, tag string) (int64, bool) {
	rest, ok := strings.CutPrefix(tag, `"`+id+"-v")
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, `"`)
	if !ok || digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	return v, err == nil && v > 0
}
