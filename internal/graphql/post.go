package graphql

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// post serves POST /graphql as gqlgen's transport.POST does, at less cost per request: it
// decodes the body ServeGraphQL has already read instead of reading it again, and writes an
// answer that is data alone as {"data":…} around the executor's JSON, where json.Marshal
// would scan that JSON once more to compact it. A body that is not JSON is left to
// transport.POST, so its error answer stays gqlgen's.
type post struct {
	transport.POST
	direct *direct // answers product(id:) queries of stored fields without the executor
}

// Media types of the answer (GraphQL over HTTP).
const (
	typeJSON            = "application/json"
	typeGraphQLResponse = "application/graphql-response+json"
)

// Supports is transport.POST's, without parsing the usual Content-Type.
func (t post) Supports(r *http.Request) bool {
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") == typeJSON && r.Header.Get("Upgrade") == "" {
		return true
	}
	return t.POST.Supports(r)
}

func (t post) Do(w http.ResponseWriter, r *http.Request, exec gql.GraphExecutor) {
	body, ok := r.Body.(*readBody)
	if !ok {
		t.POST.Do(w, r, exec)
		return
	}
	start := gql.Now()
	var params gql.RawParams
	if err := jsonv2.Unmarshal(body.b, &params, paramsOptions); err != nil {
		// Anything the strict decoding refuses is decoded as transport.POST decodes it
		// (encoding/json), which answers or accepts it exactly as before.
		t.POST.Do(w, r, exec)
		return
	}
	ctx := r.Context()
	contentType := responseType(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", contentType)
	params.Headers = r.Header
	params.ReadTime = gql.TraceTiming{Start: start, End: gql.Now()}

	oc, errs := exec.CreateOperationContext(ctx, &params)
	if errs != nil {
		// Refused before execution: a protocol error (parse, validation, the limits) is 400
		// to graphql-response+json clients and 422 to application/json ones.
		status := http.StatusOK
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			status = http.StatusUnprocessableEntity
			if contentType == typeGraphQLResponse {
				status = http.StatusBadRequest
			}
		}
		w.WriteHeader(status)
		writeResponse(w, exec.DispatchError(gql.WithOperationContext(ctx, oc), errs))
		return
	}
	if t.direct != nil {
		data := answers.Get().(*bytes.Buffer)
		data.Reset()
		answered := t.direct.answer(ctx, oc, data)
		if answered {
			writeData(w, data.Bytes())
		}
		putAnswer(data)
		if answered {
			return
		}
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeResponse(w, responses(ctx))
}

// responseType is the media type of the answer to a request accepting accept: JSON when it
// accepts nothing in particular, anything, or JSON before the GraphQL response type (clients
// from before that type), else the GraphQL response type.
func responseType(accept string) string {
	if accept == "" {
		return typeJSON
	}
	for part := range strings.SplitSeq(accept, ",") {
		part = strings.TrimSpace(part)
		mediaType := strings.ToLower(part)
		if strings.ContainsRune(part, ';') {
			var err error
			if mediaType, _, err = mime.ParseMediaType(part); err != nil {
				continue
			}
		}
		switch mediaType {
		case "*/*", "application/*", typeJSON:
			return typeJSON
		case typeGraphQLResponse:
			return typeGraphQLResponse
		}
	}
	return typeGraphQLResponse
}

// paramsOptions decode a body the way transport.POST's encoding/json decoder does (numbers
// kept as written, as json.Number) in about half the CPU, for the bodies where both agree:
// one object whose members are the parameters' exact names, each once, in valid UTF-8. The
// decoding refuses everything else (a member named in another case, which encoding/json
// matches, a repeated one, invalid UTF-8, which it replaces, anything after the object,
// which it ignores), and Do hands those bodies to transport.POST.
var paramsOptions = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, v *any) error {
		if dec.PeekKind() != '0' {
			return errors.ErrUnsupported // not a number: decoded as usual
		}
		n, err := dec.ReadValue()
		if err != nil {
			return err
		}
		*v = json.Number(n)
		return nil
	})),
)

var answers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeResponse writes resp as json.Marshal would. An answer with data alone is the data's
// JSON, compact as the executor writes it, with <, > and & escaped as json.Marshal escapes
// them; anything else (errors, extensions) is marshalled.
func writeResponse(w io.Writer, resp *gql.Response) {
	if resp == nil || len(resp.Errors) > 0 || len(resp.Extensions) > 0 || resp.Label != "" || len(resp.Path) > 0 || resp.HasNext != nil || len(resp.Data) == 0 {
		b, err := json.Marshal(resp)
		if err != nil {
			panic(fmt.Errorf("the GraphQL answer could not be marshalled: %w", err))
		}
		_, _ = w.Write(b)
		return
	}
	writeData(w, resp.Data)
}

// writeData writes an answer of data alone, data being compact JSON.
func writeData(w io.Writer, data []byte) {
	buf := answers.Get().(*bytes.Buffer)
	buf.Reset()
	buf.WriteString(`{"data":`)
	json.HTMLEscape(buf, data)
	buf.WriteByte('}')
	_, _ = w.Write(buf.Bytes())
	putAnswer(buf)
}

func putAnswer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledAnswer {
		answers.Put(buf)
	}
}

// maxPooledAnswer is the largest buffer kept for the next answer: a page of products is
// smaller, and a rare huge answer should not stay in memory.
const maxPooledAnswer = 64 << 10

// readBody is a request body ServeGraphQL has read, kept whole for post to decode.
type readBody struct {
	*bytes.Reader
	b []byte
}

func newReadBody(b []byte) *readBody { return &readBody{Reader: bytes.NewReader(b), b: b} }

func (*readBody) Close() error { return nil }
