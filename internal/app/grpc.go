package app

import (
	"context"
	"crypto/tls"
	"net"

	"plaza/internal/catalog/cached"
	"plaza/internal/chat"
	"plaza/internal/config"
	"plaza/internal/grpcapi"
	"plaza/internal/users"
)

// newGRPC builds the gRPC transport over the same services as REST, and opens its
// listener. ready is REST's readiness, which grpc.health.v1 follows; shutdown ends its
// streams.
func newGRPC(cfg config.Config, d *deps, accounts *users.Service, products *cached.Catalog, rooms *chat.Service,
	ready func(context.Context) bool, shutdown context.Context) (*grpcapi.Server, net.Listener, error) {
	var creds *tls.Config
	if cfg.GRPCTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.GRPCTLSCert, cfg.GRPCTLSKey)
		if err != nil {
			return nil, nil, &config.Error{Var: "PLAZA_GRPC_TLS_CERT", Msg: err.Error()}
		}
		creds = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv := grpcapi.New(grpcapi.Options{
		Logger:         d.log,
		Registry:       d.registry,
		RateLimit:      cfg.RateLimit,
		RateBurst:      cfg.RateBurst,
		MaxRecvMsgSize: int(min(cfg.MaxBodyBytes, 1<<30)),
		TLS:            creds,
		Auth:           accounts,
		Users:          accounts,
		Catalog:        products,
		Chat:           rooms,
		Bus:            d.bus,
		PresenceTTL:    cfg.PresenceTTL,
		Ready:          ready,
		Shutdown:       shutdown,
	})
	ln, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, nil, &config.Error{Var: "PLAZA_GRPC_ADDR", Msg: err.Error()}
	}
	return srv, ln, nil
}
