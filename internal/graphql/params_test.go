package graphql

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	gql "github.com/99designs/gqlgen/graphql"
)

// paramBodies are bodies decodeParams reads by hand and bodies it leaves to json.Decoder.
var paramBodies = []string{
	`{"query":"query($id:ID!){product(id:$id){id name}}","variables":{"id":"p1"}}`,
	" \t\r\n{ \"query\" : \"{ a }\" , \"operationName\" : null , \"variables\" : null } ",
	`{"query":"query Q($a: String, $b: Boolean) { a }","operationName":"Q","variables":{"a":null,"b":true,"c":false,"":"é\n\t\r\b\f\/\\\""}}`,
	`{}`, `{"variables":{}}`, `{"query":""}`, `{"query":"x"} trailing`, `{"query":"x"}}`, `{"query":"x"}{"query":"y"}`,
	`{"query":"x",}`, `{"variables":{"a":"b",}}`, `{,}`, `{"query":"x" "operationName":"y"}`, `{"query"}`,
	`{"query":"x","query":"y"}`, `{"variables":{"a":"1","a":"2"}}`, `{"variables":{"a":"1"},"variables":{"b":"2"}}`,
	`{"Query":"x"}`, `{"QUERY":"x"}`, `{"query":"\u00e9"}`, `{"qu\u0065ry":"x"}`, `{"query":"a\qb"}`, `{"query":"a\`,
	"{\"query\":\"a\x01b\"}", "{\"query\":\"a\xffb\"}", "{\"query\":\"a\x7fb\"}", `{"query":1}`, `{"query":true}`, `{"query":nullx}`,
	`{"variables":{"n":1}}`, `{"variables":{"n":1.5e300}}`, `{"variables":{"o":{"p":[1,"2",null]}}}`, `{"variables":[]}`,
	`{"variables":{"t":truex}}`, `{"variables":{"t":tru}}`, `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}`,
	`{"query":"x","other":1}`, ``, ` `, `[]`, `null`, `"x"`, `{`, `{"query":"x"`, `{"query":"x",`, `{"variables":{"a":"b"`,
}

func decodeWithDecoder(body []byte) (gql.RawParams, error) {
	var p gql.RawParams
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := dec.Decode(&p)
	return p, err
}

// sameDecoding fails when decodeParams and transport.POST's json.Decoder disagree on body.
func sameDecoding(t *testing.T, body []byte) {
	var got gql.RawParams
	gotErr := decodeParams(body, &got)
	want, wantErr := decodeWithDecoder(body)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("%q: error %v, json.Decoder's %v", body, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %#v, json.Decoder's %#v", body, got, want)
	}
}

func TestDecodeParamsAsDecoder(t *testing.T) {
	t.Parallel()
	for _, b := range paramBodies {
		sameDecoding(t, []byte(b))
	}
	// The usual bodies are read by hand.
	for _, b := range paramBodies[:3] {
		var p gql.RawParams
		if !usual([]byte(b), &p) {
			t.Errorf("%q was left to json.Decoder", b)
		}
	}
}

func FuzzDecodeParams(f *testing.F) {
	for _, b := range paramBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(sameDecoding)
}
