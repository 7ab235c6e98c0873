package graphql

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	gql "github.com/99designs/gqlgen/graphql"
)

// decodeParams decodes a POST body into params as gqlgen's transport.POST does (a
// json.Decoder with UseNumber: the first JSON value, what follows it unread). encoding/json
// spends about a tenth of a small query's CPU on the usual body, so that body is read here
// by hand: an object of "query", "operationName" and "variables", each at most once, whose
// strings have no \u escape and whose variables are strings, booleans and nulls. Anything
// else (numbers, nested values, extensions, unknown or repeated keys, invalid UTF-8, a body
// that is not JSON) is json.Decoder's, so what a body decodes to never depends on which of
// the two read it (FuzzDecodeParams).
func decodeParams(body []byte, params *gql.RawParams) error {
	if usual(body, params) {
		return nil
	}
	*params = gql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return dec.Decode(params)
}

// usual decodes the usual body into params and reports whether it was one.
func usual(body []byte, params *gql.RawParams) bool {
	r := reader{b: body}
	if !r.skip('{') {
		return false
	}
	if r.skip('}') {
		return true
	}
	var seenQuery, seenName, seenVariables bool
	for {
		key, ok := r.str()
		if !ok || !r.skip(':') {
			return false
		}
		switch key {
		case "query":
			if seenQuery {
				return false
			}
			seenQuery = true
			if params.Query, ok = r.strOrNull(); !ok {
				return false
			}
		case "operationName":
			if seenName {
				return false
			}
			seenName = true
			if params.OperationName, ok = r.strOrNull(); !ok {
				return false
			}
		case "variables":
			if seenVariables {
				return false
			}
			seenVariables = true
			if params.Variables, ok = r.variables(); !ok {
				return false
			}
		default:
			return false
		}
		if !r.skip(',') {
			return r.skip('}') // what follows the object is not read, as json.Decoder does not
		}
	}
}

// reader reads JSON tokens from b, JSON's whitespace skipped before each.
type reader struct {
	b []byte
	i int
}

func (r *reader) space() {
	for r.i < len(r.b) && (r.b[r.i] == ' ' || r.b[r.i] == '\t' || r.b[r.i] == '\n' || r.b[r.i] == '\r') {
		r.i++
	}
}

// skip consumes c if it comes next.
func (r *reader) skip(c byte) bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// word consumes w if it comes next, followed by something that cannot continue it.
func (r *reader) word(w string) bool {
	r.space()
	end := r.i + len(w)
	if end > len(r.b) || string(r.b[r.i:end]) != w {
		return false
	}
	if end < len(r.b) && (r.b[end] >= 'a' && r.b[end] <= 'z' || r.b[end] >= 'A' && r.b[end] <= 'Z' || r.b[end] >= '0' && r.b[end] <= '9') {
		return false
	}
	r.i = end
	return true
}

// str reads a string of valid UTF-8 without control characters or \u escapes.
func (r *reader) str() (string, bool) {
	if !r.skip('"') {
		return "", false
	}
	start, escaped := r.i, false
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			raw := r.b[start:r.i]
			r.i++
			if !utf8.Valid(raw) {
				return "", false
			}
			if !escaped {
				return string(raw), true
			}
			return unescape(raw)
		case c == '\\':
			escaped = true
			r.i++ // the escaped character, checked by unescape
		case c < 0x20:
			return "", false
		}
	}
	return "", false
}

// unescape resolves the escapes of a string's content, but for \u.
func unescape(raw []byte) (string, bool) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			out = append(out, raw[i])
			continue
		}
		i++
		if i == len(raw) {
			return "", false
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default:
			return "", false
		}
	}
	return string(out), true
}

func (r *reader) strOrNull() (string, bool) {
	if r.word("null") {
		return "", true
	}
	return r.str()
}

// variables reads an object of strings, booleans and nulls, or null.
func (r *reader) variables() (map[string]any, bool) {
	if r.word("null") {
		return nil, true
	}
	if !r.skip('{') {
		return nil, false
	}
	vars := map[string]any{}
	if r.skip('}') {
		return vars, true
	}
	for {
		name, ok := r.str()
		if _, repeated := vars[name]; !ok || repeated || !r.skip(':') {
			return nil, false
		}
		switch {
		case r.word("null"):
			vars[name] = nil
		case r.word("true"):
			vars[name] = true
		case r.word("false"):
			vars[name] = false
		default:
			if vars[name], ok = r.str(); !ok {
				return nil, false
			}
		}
		if !r.skip(',') {
			return vars, r.skip('}')
		}
	}
}
