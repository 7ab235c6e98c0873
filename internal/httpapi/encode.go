package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"plaza/internal/plaza"
)

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, status int, v any) {
	writeJSON(w, status, "application/json", v)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		// Only unencodable values land here: a programming error, not a client's.
		http.Error(w, `{"title":"Internal Server Error","status":500}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Decode reads one JSON value into T strictly: unknown fields, trailing data, wrong types and
// oversized bodies are bad_request (or too_large) errors that name the problem.
func Decode[T any](r *http.Request) (T, error) {
	var v T
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/merge-patch+json") {
		return v, plaza.Errorf(plaza.EBadRequest, "expected Content-Type application/json, got %q", ct)
	}
	dec := json.NewDecoder(r.Body)
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
