package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes registers the whole REST surface. Read it to see the API at a glance.
func (s *Server) routes() {
	// Probes and metrics: never behind auth, never rate limited.
	s.handle("GET /healthz", s.handleLiveness())
	s.handle("GET /readyz", s.handleHealth())
	s.handle("GET /api/health", s.handleHealth())
	s.handle("GET /metrics", s.handleMetrics(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})))

	// Users and auth. Who may do what is decided by users.Service; handlers decode, call
	// it and encode.
	s.handle("POST /api/users", s.handleUserRegister())
	s.handle("GET /api/users", s.handleUserList())
	s.handle("GET /api/users/me", s.handleUserMe())
	s.handle("GET /api/users/{id}", s.handleUserGet())
	s.handle("PUT /api/users/{id}", s.handleUserPut())
	s.handle("PATCH /api/users/{id}", s.handleUserPatch())
	s.handle("DELETE /api/users/{id}", s.handleUserDelete())
	s.handle("POST /api/auth/login", s.handleLogin())
	s.handle("POST /api/auth/refresh", s.handleRefresh())
	s.handle("POST /api/auth/logout", s.handleLogout())

	// Product catalog. GET /api/products/{id} and GET /api/products/{category}/{subcategory...}
	// do not overlap: one segment is always an ID, and a category path needs the slash
	// ("/api/products/electronics/" lists the whole category).
	s.handle("GET /api/products", s.handleProductList())
	s.handle("GET /api/products/{category}/{subcategory...}", s.handleProductList())
	s.handle("GET /api/products/{id}", s.handleProductGet())
	s.handle("POST /api/products", s.handleProductCreate())
	s.handle("PUT /api/products/{id}", s.handleProductReplace())
	s.handle("PATCH /api/products/{id}", s.handleProductPatch())
	s.handle("DELETE /api/products/{id}", s.handleProductDelete())
	s.handle("GET /api/categories", s.handleCategories())

	// Chat rooms (chat.Service decides who may do what) and the real-time streams. /ws and
	// /api/events go through the whole chain like any request and are logged once, when
	// they end.
	s.handle("POST /api/rooms", s.handleRoomCreate())
	s.handle("GET /api/rooms", s.handleRoomList())
	s.handle("GET /api/rooms/{room}/messages", s.handleRoomMessages())
	s.handle("DELETE /api/rooms/{room}/messages/{id}", s.handleRoomMessageDelete())
	s.handle("POST /api/auth/ws-ticket", s.handleWSTicket())
	s.handle("GET /ws", s.handleStream(func(w http.ResponseWriter, r *http.Request) error { return s.streams.ServeWebSocket(w, r) }))
	s.handle("GET /api/events", s.handleStream(func(w http.ResponseWriter, r *http.Request) error { return s.streams.ServeEvents(w, r) }))

	// GraphQL: the same services again (internal/graphql), behind the same chain, so the
	// body limit, rate limits and request IDs hold there too. GET /graphql also upgrades
	// to WebSocket for subscriptions; GraphiQL is served from the binary.
	graphQL := s.handleStream(func(w http.ResponseWriter, r *http.Request) error { return s.graphql.ServeGraphQL(w, r) })
	s.handle("GET /graphql", graphQL)
	s.handle("POST /graphql", graphQL)
	s.handleUI("GET /playground", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.graphql.ServePlayground(w, r) }))
	s.handleUI("GET /playground/{file...}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.graphql.ServePlayground(w, r) }))

	// The API's own description (api/openapi/openapi.yaml, the source of truth).
	s.handle("GET /openapi.yaml", s.handleOpenAPIYAML())
	s.handle("GET /openapi.json", s.handleOpenAPIJSON())

	// The web UI and Swagger UI, from the binary: pages and assets, not API operations.
	// The catch-all serves the app for every other GET path (it routes them in the
	// browser); under /api/ it answers the API's 404.
	s.handleUI("GET /swagger/{file...}", s.handleSwagger())
	s.handleUI("GET /static/{file}", s.handleStatic())
	s.handleUI(appRoute, s.handleApp())
}
