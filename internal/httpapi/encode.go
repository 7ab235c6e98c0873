package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	jsonpatch "github.com/evanphx/json-patch/v5"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"plaza/internal/plaza"
)

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, r *http.Request, status int, v any) {
	writeJSON(w, r, status, "application/json", v)
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		// Only unencodable values land here: a programming error, not a client's. The
		// access log line of this request carries the cause.
		infoFrom(r.Context()).err = fmt.Errorf("encoding the response: %w", err)
		http.Error(w, `{"title":"Internal Server Error","status":500}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Decode reads the request body as one JSON value of type T strictly (see decodeJSON),
// after checking its Content-Type.
func Decode[T any](r *http.Request) (T, error) {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/merge-patch+json") {
		var zero T
		return zero, plaza.Errorf(plaza.EBadRequest, "expected Content-Type application/json, got %q", ct)
	}
	return decodeJSON[T](r.Body)
}

// decodeJSON reads one JSON value into T strictly: unknown fields, trailing data, wrong
// types and oversized bodies are bad_request (or too_large) errors that name the problem.
func decodeJSON[T any](body io.Reader) (T, error) {
	var v T
	b, err := io.ReadAll(body)
	if err != nil {
		return v, decodeError(err)
	}
	if err := checkText(b); err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return v, decodeError(err)
		}
		return v, plaza.Errorf(plaza.EBadRequest, "the body has data after the JSON value")
	}
	return v, nil
}

// checkText refuses JSON text that encoding/json would silently repair: invalid UTF-8 and
// \u escapes of lone surrogates both decode to U+FFFD, so two different byte strings (two
// passwords, two emails) would become the same value.
func checkText(b []byte) error {
	if !utf8.Valid(b) {
		return plaza.Errorf(plaza.EBadRequest, "the body is not valid UTF-8")
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		i++ // the escaped character
		if b[i] != 'u' {
			continue
		}
		r, ok := hex4(b[i+1:])
		if !ok || !utf16.IsSurrogate(r) {
			continue
		}
		lo, ok := rune(0), false
		if r < 0xDC00 && i+10 < len(b) && b[i+5] == '\\' && b[i+6] == 'u' {
			lo, ok = hex4(b[i+7:])
		}
		if !ok || utf16.DecodeRune(r, lo) == unicode.ReplacementChar {
			return plaza.Errorf(plaza.EBadRequest, "the body holds a \\u escape of a lone UTF-16 surrogate, which is no character")
		}
		i += 10 // past both escapes
	}
	return nil
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// mergePatch applies the JSON merge patch (RFC 7396) patch to cur's JSON document and
// decodes the result strictly into T: a patch naming an unknown or read-only field is a
// bad_request, and null removes a field (so a required one then fails validation).
func mergePatch[T any](cur any, patch []byte) (T, error) {
	var zero T
	doc, err := json.Marshal(cur)
	if err != nil {
		return zero, err
	}
	merged, err := jsonpatch.MergePatch(doc, patch)
	if err != nil {
		return zero, plaza.Wrap(plaza.EBadRequest, err, "the merge patch could not be applied")
	}
	return decodeJSON[T](bytes.NewReader(merged))
}

// readMergePatch reads a merge patch body: a JSON object, sent as
// application/merge-patch+json (or application/json, or without a Content-Type).
func readMergePatch(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/merge-patch+json") && !strings.HasPrefix(ct, "application/json") {
		return nil, plaza.Errorf(plaza.EBadRequest, "expected Content-Type application/merge-patch+json, got %q", ct)
	}
	patch, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, decodeError(err)
	}
	if err := checkText(patch); err != nil {
		return nil, err
	}
	if !json.Valid(patch) || !bytes.HasPrefix(bytes.TrimSpace(patch), []byte("{")) {
		return nil, plaza.Errorf(plaza.EBadRequest, "the body must be a JSON merge patch: a JSON object")
	}
	return patch, nil
}

func decodeError(err error) error {
	if err = asTooLarge(err); plaza.ErrorCodeOf(err) == plaza.ETooLarge {
		return err
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return plaza.Errorf(plaza.EBadRequest, "the body is empty; expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return plaza.Errorf(plaza.EBadRequest, "the body ends in the middle of a JSON value")
	case errors.As(err, &syn):
		return plaza.Errorf(plaza.EBadRequest, "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field != "" {
			want := jsonKind(typ.Type)
			return &plaza.Error{Code: plaza.EBadRequest, Message: fmt.Sprintf("field %q must be %s, got %s", typ.Field, want, typ.Value),
				Fields: []plaza.FieldError{{Field: typ.Field, Message: "must be " + want}}}
		}
		return plaza.Errorf(plaza.EBadRequest, "the body must be %s, got %s", jsonKind(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &plaza.Error{Code: plaza.EBadRequest, Message: fmt.Sprintf("unknown field %q", field),
			Fields: []plaza.FieldError{{Field: field, Message: "unknown field"}}}
	default:
		return plaza.Wrap(plaza.EBadRequest, err, "the body could not be read as JSON")
	}
}

// jsonKind names what a Go type looks like in JSON, so messages never show Go type names.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "a JSON object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "a JSON value"
	}
}
