package discovery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Static is a fixed list of instances, for setups where something else (a config file, an
// operator) knows where the instances run. Set replaces the list (a config reload).
type Static struct {
	mu        sync.RWMutex
	instances []Instance
}

// NewStatic lists is; each needs an HTTPAddr, and an instance's ID is its HTTPAddr when
// empty.
func NewStatic(is []Instance) *Static {
	s := &Static{}
	s.Set(is)
	return s
}

// Set replaces the list.
func (s *Static) Set(is []Instance) {
	is = slices.Clone(is)
	for i := range is {
		if is[i].ID == "" {
			is[i].ID = is[i].HTTPAddr
		}
	}
	sortByID(is)
	s.mu.Lock()
	s.instances = is
	s.mu.Unlock()
}

// Instances returns the list.
func (s *Static) Instances(context.Context) ([]Instance, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.instances), nil
}

// ParseStatic reads "http=grpc,http=grpc…" (the gRPC address and its "=" are optional):
// 127.0.0.1:8080=127.0.0.1:50051,127.0.0.1:8081=127.0.0.1:50052.
func ParseStatic(list string) ([]Instance, error) {
	var is []Instance
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		httpAddr, grpcAddr, _ := strings.Cut(item, "=")
		if !strings.Contains(httpAddr, ":") || (grpcAddr != "" && !strings.Contains(grpcAddr, ":")) {
			return nil, fmt.Errorf("expected host:port[=host:port] items, got %q", item)
		}
		is = append(is, Instance{ID: httpAddr, HTTPAddr: httpAddr, GRPCAddr: grpcAddr})
	}
	if len(is) == 0 {
		return nil, fmt.Errorf("expected at least one host:port[=host:port]")
	}
	return is, nil
}
