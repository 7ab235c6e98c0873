// Package discovery says which `plaza serve` instances are live. Every instance announces
// itself (Announce) in a Registry that can be written (Redis); a gateway reads any
// Registry: Redis, a static list, or DNS as a Kubernetes headless Service gives it. The
// backends sit side by side (redis.go, static.go, dns.go) under one contract test.
package discovery

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Instance is one `plaza serve` process as the registry holds it.
type Instance struct {
	ID        string    `json:"id"`
	HTTPAddr  string    `json:"http_addr"`           // host:port a gateway dials for HTTP
	GRPCAddr  string    `json:"grpc_addr,omitempty"` // host:port of its gRPC server
	Version   string    `json:"version,omitempty"`
	Zone      string    `json:"zone,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// ExpiresAt is when the registration lapses unless renewed (Redis only).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Registry lists the live instances.
type Registry interface {
	// Instances returns the live instances ordered by ID. On an error the caller keeps
	// what it knew: a registry outage must not empty a gateway's pools.
	Instances(ctx context.Context) ([]Instance, error)
}

// Registrar is a Registry instances write themselves into.
type Registrar interface {
	Registry
	// Register adds or renews inst for ttl: without a renewal it drops out after ttl.
	Register(ctx context.Context, inst Instance, ttl time.Duration) error
	// Deregister removes the instance at once.
	Deregister(ctx context.Context, id string) error
}

// Watcher is a Registry that can say when its contents changed, so a reader refreshes at
// once instead of at its next poll. The channel is closed when ctx ends.
type Watcher interface {
	Watch(ctx context.Context) <-chan struct{}
}

func sortByID(is []Instance) []Instance {
	slices.SortFunc(is, func(a, b Instance) int { return cmp.Compare(a.ID, b.ID) })
	return is
}
