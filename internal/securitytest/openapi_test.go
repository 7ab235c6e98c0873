package securitytest

import (
	"testing"

	"plaza/internal/openapitest"
)

// The hostile requests of these tests, and the server's answers, are validated against
// api/openapi/openapi.yaml too: whatever the document refuses, the server must refuse.
func TestMain(m *testing.M) { openapitest.Main(m) }
