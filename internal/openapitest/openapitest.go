// Package openapitest holds the integration tests to api/openapi/openapi.yaml: it wraps the
// HTTP transport the tests use, validates every request and response against the document
// with pb33f's libopenapi-validator, and fails the test binary when any disagrees. Only test
// code imports it.
package openapitest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi/datamodel"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"plaza/api/openapi"
)

// Document is the parsed openapi.yaml, built once per test binary.
var Document = sync.OnceValues(func() (*v3.Document, error) {
	// A category's children are categories: a recursion through an array, which ends at
	// the leaves (an empty array), not an infinite schema.
	doc, err := libopenapi.NewDocumentWithConfiguration(openapi.YAML, &datamodel.DocumentConfiguration{IgnoreArrayCircularReferences: true})
	if err != nil {
		return nil, fmt.Errorf("openapitest: parsing openapi.yaml: %w", err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("openapitest: building the model of openapi.yaml: %w", err)
	}
	return &m.Model, nil
})

var newLookup = sync.OnceValues(func() (*pathLookup, error) {
	m, err := Document()
	if err != nil {
		return nil, err
	}
	return newPathLookup(m)
})

var newValidator = sync.OnceValues(func() (validator.Validator, error) {
	m, err := Document()
	if err != nil {
		return nil, err
	}
	lookup, err := newLookup()
	if err != nil {
		return nil, err
	}
	return validator.NewValidatorFromV3Model(m, config.WithPathTree(lookup)), nil
})

// Unvalidated is the transport under the validating one, for requests that are not API
// operations: the web UI's pages and assets.
var Unvalidated http.RoundTripper = http.DefaultTransport

// violations collects what the transport found, for Main to report even when a test
// dropped the error the transport returned.
var violations struct {
	mu   sync.Mutex
	list []string
}

// Main runs the tests with http.DefaultTransport validating (so http.Get, http.DefaultClient
// and every client without a transport of its own are covered) and fails the run if any
// exchange disagreed with the document. skip lists path prefixes of test-only routes.
func Main(m *testing.M, skip ...string) {
	if _, err := newValidator(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	Unvalidated = http.DefaultTransport
	http.DefaultTransport = &Transport{Base: http.DefaultTransport, Skip: skip}
	code := m.Run()
	violations.mu.Lock()
	defer violations.mu.Unlock()
	if len(violations.list) > 0 {
		fmt.Fprintf(os.Stderr, "openapitest: %d exchanges disagree with api/openapi/openapi.yaml:\n", len(violations.list))
		for _, v := range violations.list {
			fmt.Fprintln(os.Stderr, "  "+v)
		}
		code = 1
	}
	os.Exit(code)
}

// Transport validates every exchange it carries. A request the document refuses must be
// refused by the server too (a 4xx); every response must be one the document describes,
// and every error response a problem body. A disagreement is returned as the round trip's
// error and recorded for Main.
type Transport struct {
	Base http.RoundTripper
	Skip []string // path prefixes that are not part of the API (test-only routes)
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if slices.ContainsFunc(t.Skip, func(p string) bool { return strings.HasPrefix(req.URL.Path, p) }) {
		return t.Base.RoundTrip(req)
	}
	// Keep the body for the validator: the base transport consumes it.
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	res, err := t.Base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	if problem := Check(req, reqBody, res); problem != nil {
		violations.mu.Lock()
		violations.list = append(violations.list, problem.Error())
		violations.mu.Unlock()
		res.Body.Close()
		return nil, problem
	}
	return res, nil
}

// streaming reports whether a response's body is a stream that must not be read here.
func streaming(res *http.Response) bool {
	return res.StatusCode == http.StatusSwitchingProtocols || strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
}

// Check validates one exchange. It reads and restores res.Body unless the response is a
// stream (a WebSocket or an event stream), whose status and headers alone are checked.
func Check(req *http.Request, reqBody []byte, res *http.Response) error {
	v, err := newValidator()
	if err != nil {
		return err
	}
	vreq := req.Clone(req.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	what := req.Method + " " + req.URL.RequestURI() + " → " + res.Status

	vres := *res
	if streaming(res) {
		vres.Body = http.NoBody
	} else {
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: reading the response: %w", what, err)
		}
		res.Body = io.NopCloser(bytes.NewReader(b))
		vres.Body = io.NopCloser(bytes.NewReader(b))
	}

	switch {
	case req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "":
		// A CORS preflight is answered by the CORS layer before any route, for every path.
		if res.StatusCode != http.StatusNoContent {
			return fmt.Errorf("%s: a preflight must answer 204", what)
		}
		return nil
	case path.Clean(req.URL.Path) != req.URL.Path && res.StatusCode/100 == 3 && res.Header.Get("Location") != "":
		// The mux redirects a path that is not in canonical form ("/api//health"); the
		// request that follows is validated in its own right.
		return nil
	}
	if err := restOfPathAsOneSegment(vreq); err != nil {
		return err
	}
	operation := hasOperation(vreq)
	if !operation && res.StatusCode >= 400 && !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		return fmt.Errorf("%s: an error answered with Content-Type %q, not application/problem+json", what, res.Header.Get("Content-Type"))
	}
	reqOK, reqErrs := v.ValidateHttpRequestSync(vreq)
	if !reqOK {
		if res.StatusCode >= 400 && res.StatusCode < 500 {
			// The server refused what the document refuses. The operation may not exist (a
			// wrong method, an unknown path), so there may be nothing to check the answer by.
			if operation {
				return validateResponse(v, vreq, &vres, what)
			}
			return nil
		}
		return fmt.Errorf("%s: the server accepted a request the document refuses: %s", what, describe(reqErrs))
	}
	return validateResponse(v, vreq, &vres, what)
}

func validateResponse(v validator.Validator, req *http.Request, res *http.Response, what string) error {
	if ok, errs := v.ValidateHttpResponse(req, res); !ok {
		return fmt.Errorf("%s: the response disagrees with the document: %s", what, describe(errs))
	}
	return nil
}

func describe[E interface{ Error() string }](errs []E) string {
	var parts []string
	for _, e := range errs {
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}
