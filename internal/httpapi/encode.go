package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
			return &plaza.Error{Code: plaza.EBadRequest, Message: fmt.Sprintf("field %q must be %s, got %s", typ.Field, typ.Type, typ.Value),
				Fields: []plaza.FieldError{{Field: typ.Field, Message: fmt.Sprintf("must be %s", typ.Type)}}}
		}
		return plaza.Errorf(plaza.EBadRequest, "the body must be %s, got %s", typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &plaza.Error{Code: plaza.EBadRequest, Message: fmt.Sprintf("unknown field %q", field),
			Fields: []plaza.FieldError{{Field: field, Message: "unknown field"}}}
	default:
		return plaza.Wrap(plaza.EBadRequest, err, "the body could not be read as JSON")
	}
}
