package plaza

import (
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
// naming the cursor parameter.
func DecodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return &Error{Code: EBadRequest, Message: "cursor is not a cursor this server issued",
			Fields: []FieldError{{Field: "cursor", Message: "does not decode"}}}
	}
	return nil
}
