package plaza

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
)

// EncodeCursor makes an opaque page cursor (base64url of JSON) from the last item's sort key
// and ID.
func EncodeCursor(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("plaza: cursor value does not encode: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor into v; anything else is a bad_request
// naming the cursor parameter. It is strict, because a cursor is client input that reaches
// a query: it must be no longer than any cursor this server issues, hold exactly the fields
// of v, and be byte for byte what EncodeCursor makes of the value it decodes to (so no
// padding, reordered or duplicate keys, or extra white space), and IDs in it are checked by
// the caller (ValidID).
func DecodeCursor(s string, v any) error {
	if len(s) > maxCursorLen {
		return badCursor()
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return badCursor()
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return badCursor()
	}
	if again, err := json.Marshal(v); err != nil || !bytes.Equal(again, b) {
		return badCursor()
	}
	return nil
}

func badCursor() *Error {
	return &Error{Code: EBadRequest, Message: "cursor is not a cursor this server issued",
		Fields: []FieldError{{Field: "cursor", Message: "does not decode"}}}
}
