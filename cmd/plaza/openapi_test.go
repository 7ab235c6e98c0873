package main

import (
	"testing"

	"plaza/internal/openapitest"
)

// Every REST request these tests make through http.DefaultTransport (http.Get,
// http.DefaultClient, and clients without a transport of their own), and every answer, is
// validated against api/openapi/openapi.yaml; a disagreement fails the run.
func TestMain(m *testing.M) { openapitest.Main(m) }
