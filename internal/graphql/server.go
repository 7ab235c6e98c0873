// Package graphql is Plaza's GraphQL transport (gqlgen, schema-first from api/graphql):
// queries and mutations over POST and GET /graphql, subscriptions over WebSocket with the
// graphql-transport-ws protocol, fed by the event bus. Resolvers are thin: they call the
// same services as REST, so authorization and validation are the services' alone. What a
// public endpoint needs on top lives here: depth, alias and complexity limits checked
// before execution, automatic persisted queries with a bounded cache, introspection by
// configuration, one mapping of plaza.Error codes to extensions.code, and a dataloader so a
// page of messages loads its authors in one store call. POST has a transport of its own
// (post.go) that answers the commonest read, a product by id, without gqlgen's executor
// (direct.go) once the operation has passed every check.
package graphql

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"plaza/internal/plaza"
	"plaza/internal/realtime"
)

// Limits bound what one operation may ask for. Zero values take the defaults.
type Limits struct {
	MaxDepth      int // nesting of selections, fragments unfolded
	MaxComplexity int // fields weighted by the page sizes they ask for
	MaxAliases    int // aliased fields in one operation
	APQCacheSize  int // persisted queries kept (least recently used dropped)
}

// Defaults of Limits: a full page of 100 products with every field costs about 1,600, a
// page of 100 messages with their authors about 1,900.
const (
	DefaultMaxDepth      = 12
	DefaultMaxComplexity = 5000
	DefaultMaxAliases    = 30
	DefaultAPQCacheSize  = 1000
)

// Options configure New.
type Options struct {
	Users   Users
	Catalog Catalog
	Chat    Chat
	Events  Events
	// Sessions, when set, ends the socket of a caller whose session ends (logout,
	// deletion) with 4403, as /ws and /api/events end theirs.
	Sessions Sessions
	Limits   Limits
	// Introspection answers __schema and __type queries (development; configurable in
	// production).
	Introspection bool
	// Origins are the browser origins allowed to open a WebSocket besides the server's own
	// host (PLAZA_CORS_ORIGINS), as for /ws.
	Origins []string
	// Shutdown ends every WebSocket when done; Wait then waits for them.
	Shutdown context.Context
	Logger   *slog.Logger
	// LoaderWait is how long the author loader gathers keys before one store call (default
	// 2 ms: the fields of a page resolve concurrently, well within it).
	LoaderWait time.Duration
}

// Server serves /graphql and /playground.
type Server struct {
	exec     *handler.Server
	users    Users
	sessions Sessions
	origins  []string
	shutdown context.Context
	log      *slog.Logger

	mu     sync.Mutex
	closed bool
	conns  sync.WaitGroup
}

// queryCacheSize is how many parsed documents (and operation weights) are kept.
const queryCacheSize = 1000

// Close codes of the graphql-transport-ws protocol.
const closeForbidden = 4403

// New builds the server over the services.
func New(opts Options) *Server {
	return newServer(opts, func(r *resolver) gql.Transport { return post{direct: newDirect(r)} })
}

// newServer builds the server with the transport posts returns serving POST requests (tests
// compare post with and without direct and gqlgen's own transport.POST).
func newServer(opts Options, posts func(*resolver) gql.Transport) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Shutdown == nil {
		opts.Shutdown = context.Background()
	}
	if opts.LoaderWait <= 0 {
		opts.LoaderWait = 2 * time.Millisecond
	}
	l := opts.Limits
	l.MaxDepth = orDefault(l.MaxDepth, DefaultMaxDepth)
	l.MaxComplexity = orDefault(l.MaxComplexity, DefaultMaxComplexity)
	l.MaxAliases = orDefault(l.MaxAliases, DefaultMaxAliases)
	l.APQCacheSize = orDefault(l.APQCacheSize, DefaultAPQCacheSize)

	s := &Server{users: opts.Users, sessions: opts.Sessions, origins: opts.Origins, shutdown: opts.Shutdown, log: opts.Logger}
	r := &resolver{users: opts.Users, catalog: opts.Catalog, chat: opts.Chat, events: opts.Events, log: opts.Logger, decoded: newDecodedProducts()}
	cfg := Config{Resolvers: r}
	weigh(&cfg.Complexity)

	srv := handler.New(NewExecutableSchema(cfg))
	// POST and GET (queries only) per GraphQL over HTTP, and WebSocket with
	// graphql-transport-ws. Responses are application/graphql-response+json when the
	// client accepts it, else application/json (also when it accepts anything, as the
	// spec asks for clients from before the new media type).
	srv.AddTransport(transport.Websocket{
		Implementation: keptSockets{},
		InitFunc:       s.initConnection,
		InitTimeout:    10 * time.Second,
		// A ping every 30 s, like /ws: a peer that does not answer within a minute is dropped.
		PingPongInterval: 30 * time.Second,
		// The HTTP body limit does not reach WebSocket frames: one subscribe message is a
		// query, far below this.
		PayloadReadLimit: ptr(int64(64 << 10)),
		ErrorFunc: func(ctx context.Context, err error) {
			s.log.DebugContext(ctx, "graphql websocket ended", "err", err)
		},
	})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(posts(r))
	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](l.APQCacheSize)})
	srv.Use(shapeLimit{maxDepth: l.MaxDepth, maxAliases: l.MaxAliases})
	srv.Use(newComplexityLimit(l.MaxComplexity, cfg.Complexity, queryCacheSize))
	srv.AroundOperations(func(ctx context.Context, next gql.OperationHandler) gql.ResponseHandler {
		return next(withLoaders(ctx, opts.Users, opts.LoaderWait))
	})
	srv.AroundFields(s.domainErrors)
	srv.SetErrorPresenter(s.present)
	srv.SetRecoverFunc(s.recoverPanic)
	s.exec = srv
	return s
}

// ServeGraphQL serves /graphql. It returns an error only before a WebSocket starts (a
// foreign Origin, shutdown under way) or when the POST body is over the limit, for the
// REST transport to answer as a problem body; everything else it answers itself as
// GraphQL responses.
func (s *Server) ServeGraphQL(w http.ResponseWriter, r *http.Request) error {
	// Answers depend on who asks and change with every write.
	w.Header().Set("Cache-Control", "no-store")
	if r.Header.Get("Upgrade") != "" {
		return s.serveWebSocket(w, r)
	}
	if r.Method == http.MethodGet && !queryOnly(r) {
		// GraphQL over HTTP: a mutation over GET is 405, so no link or prefetch can change
		// anything.
		w.Header().Set("Allow", "POST")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = io.WriteString(w, `{"errors":[{"message":"GET requests may only run queries; send mutations with POST","extensions":{"code":"BAD_REQUEST"}}]}`+"\n")
		return nil
	}
	if r.Method == http.MethodPost {
		// Read the body here so a body over PLAZA_MAX_BODY_BYTES is a 413 like anywhere
		// else, not a GraphQL error about an unreadable body.
		body, err := io.ReadAll(r.Body)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return plaza.Errorf(plaza.ETooLarge, "the request body is over %d bytes", tooLarge.Limit)
		}
		if err != nil {
			return plaza.Wrap(plaza.EBadRequest, err, "the request body could not be read")
		}
		r.Body = newReadBody(body)
	}
	s.exec.ServeHTTP(w, r)
	return nil
}

// queryOnly reports whether a GET request's document selects no mutation or subscription.
// A document that does not parse passes: the executor answers that one.
func queryOnly(r *http.Request) bool {
	q := r.URL.Query()
	doc, err := parser.ParseQuery(&ast.Source{Input: q.Get("query")})
	if err != nil {
		return true
	}
	op := doc.Operations.ForName(q.Get("operationName"))
	if op == nil && len(doc.Operations) == 1 {
		op = doc.Operations[0]
	}
	return op == nil || op.Operation == ast.Query
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) error {
	if err := realtime.CheckOrigin(r, s.origins); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed || s.shutdown.Err() != nil {
		s.mu.Unlock()
		return plaza.Errorf(plaza.EUnavailable, "the server is shutting down")
	}
	s.conns.Add(1)
	s.mu.Unlock()
	defer s.conns.Done()

	// The server's read and write timeouts bound ordinary requests; a subscription lives
	// as long as the client wants, kept honest by pings.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// gqlgen closes the socket when the request's context ends: end it on shutdown.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ctx = context.WithValue(ctx, socketKey{}, &socket{})
	stop := context.AfterFunc(s.shutdown, cancel)
	defer stop()
	s.exec.ServeHTTP(w, r.WithContext(ctx))
	return nil
}

// initConnection checks the connection_init payload: a token there ("Authorization:
// Bearer …" or "token") must be valid, or the connection is closed with 4403. Without one
// the connection acts as whoever the upgrade request was (the Authorization header, else
// anonymous: product changes are public). A signed-in connection lasts as long as the
// caller's session (watchSession).
func (s *Server) initConnection(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	token := payload.GetString("token")
	if auth := payload.Authorization(); auth != "" {
		token = auth
		if len(auth) > 7 && (auth[:7] == "Bearer " || auth[:7] == "bearer ") {
			token = auth[7:]
		}
	}
	if token != "" {
		p, err := s.users.Authenticate(ctx, token)
		if err != nil {
			ctx = transport.WithWebsocketCloseCode(ctx, closeForbidden)
			return transport.AppendCloseReason(ctx, "Forbidden"), nil, errors.New("the token in connection_init is not valid")
		}
		ctx = plaza.WithPrincipal(ctx, p)
	}
	return s.watchSession(ctx), nil, nil
}

// watchSession puts a signed-in connection under the session checks: when the caller's
// session ends, the socket closes with 4403 (graphql-ws's Forbidden, which its clients do
// not retry), and the connection's context ends so gqlgen stops every subscription on it.
func (s *Server) watchSession(ctx context.Context) context.Context {
	sock, _ := ctx.Value(socketKey{}).(*socket)
	if _, signedIn := plaza.PrincipalFrom(ctx); !signedIn || s.sessions == nil || sock == nil || sock.conn == nil {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := s.sessions.WatchSession(ctx, func() {
		// The close frame goes first: gqlgen's own close on cancel would say 1000.
		_ = sock.conn.WriteClose(closeForbidden, "Forbidden: the session has ended")
		cancel()
	})
	context.AfterFunc(ctx, stop)
	return ctx
}

// socket is where keptSockets leaves the connection it accepted for the request, so that
// initConnection can close it with a code of its choosing.
type socket struct{ conn transport.WebsocketConn }

type socketKey struct{}

// keptSockets accepts WebSockets as gqlgen does by default (coder/websocket) and keeps
// each in its request's socket.
type keptSockets struct {
	transport.CoderWebsocketImplementation
}

func (k keptSockets) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := k.CoderWebsocketImplementation.Accept(w, r, opts)
	if sock, ok := r.Context().Value(socketKey{}).(*socket); ok && err == nil {
		sock.conn = conn
	}
	return conn, err
}

// Wait refuses new WebSockets and waits until every open one has closed (the Shutdown
// context closes them), or ctx is done.
func (s *Server) Wait(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func ptr[T any](v T) *T { return &v }
