// Package openapi holds Plaza's REST API description, openapi.yaml: written by hand (spec
// first), embedded in the binary, served by internal/httpapi and checked against the
// server's behaviour by the integration tests, which validate every request and response
// they make against it.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// YAML is the document as written.
//
//go:embed openapi.yaml
var YAML []byte

// JSON converts the document to JSON. It fails only if the YAML holds something JSON cannot
// (a mapping key that is not a string), which the tests would catch.
func JSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(YAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi: reading openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: converting openapi.yaml to JSON: %w", err)
	}
	return b, nil
}
