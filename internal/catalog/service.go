package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"plaza/internal/plaza"
)

// Store keeps products. internal/store implements it on SQLite and PostgreSQL; its errors
// are *plaza.Error.
type Store interface {
	// ByID returns a product or ENotFound.
	ByID(ctx context.Context, id string) (Product, error)
	// ByIDJSON returns a product as JSON, byte for byte what encoding/json writes for it
	// followed by a newline, and its version; or ENotFound. A store may encode it on its
	// own (SQLite does, in the query).
	ByIDJSON(ctx context.Context, id string) ([]byte, int64, error)
	// List returns a page of a normalized filter (see Filter.Normalize); a cursor it did not
	// issue for that sort is EBadRequest.
	List(ctx context.Context, f Filter) (Page, error)
	// Insert adds products in one transaction (bulk loads: no events).
	Insert(ctx context.Context, ps ...Product) error
	// Create adds p; events are stored in the same transaction (the outbox) and published
	// after the commit, so they exist if and only if the product does.
	Create(ctx context.Context, p Product, events ...plaza.Outgoing) error
	// InsertDemo inserts ps unless demo data was offered before or products exist; it
	// reports whether it inserted. Instances starting together seed at most once.
	InsertDemo(ctx context.Context, ps []Product) (bool, error)
	// Update writes p's client fields and UpdatedAt if the stored version is still version,
	// bumps the version and returns the stored product; events are stored with the
	// change, as for Create. ENotFound when p.ID is gone, EPreconditionFailed when the
	// version moved on.
	Update(ctx context.Context, p Product, version int64, events ...plaza.Outgoing) (Product, error)
	// Delete removes the product if its stored version is still version; events and
	// errors as Update.
	Delete(ctx context.Context, id string, version int64, events ...plaza.Outgoing) error
	// PathCounts counts products per (category, subcategory).
	PathCounts(ctx context.Context) ([]PathCount, error)
	// Count counts every product.
	Count(ctx context.Context) (int64, error)
	// Analyze refreshes the planner's statistics after a bulk load.
	Analyze(ctx context.Context) error
}

// Event types on plaza.StreamCatalog; the data is the product (as it was, for deleted).
const (
	EventCreated = "product.created"
	EventUpdated = "product.updated"
	EventDeleted = "product.deleted"
)

const (
	// maxIDLen: longer IDs cannot exist; they are answered without a query.
	maxIDLen = 64
	// updateAttempts bounds retries of an unconditional write that raced another write.
	updateAttempts = 3
)

// Options configure New. Store is required. Events reach the bus through the store's
// outbox (the store's relay publishes them), not from here.
type Options struct {
	Store  Store
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// QueryTimeout bounds the database time of one list or search (default
	// DefaultQueryTimeout).
	QueryTimeout time.Duration
	// SearchSlots is how many full-text searches may run at once (default
	// DefaultSearchSlots); more wait their turn within QueryTimeout.
	SearchSlots int
}

// DefaultSearchSlots leaves most of a store's connections to ordinary reads (SQLite keeps
// four readers) however many searches arrive.
const DefaultSearchSlots = 2

// DefaultQueryTimeout is the bound when none is configured. Production configures 250 ms
// (PLAZA_QUERY_TIMEOUT): a page over 100k products takes about a millisecond, a broad
// search tens. The looser default leaves room for -race on a busy machine.
const DefaultQueryTimeout = 2 * time.Second

// Service is the catalog: everyone may read, admins may write. It speaks in products and
// versions; caching encoded reads and entity tags belong to the transports' side (see
// internal/catalog/cached and internal/etag).
type Service struct {
	store Store
	log   *slog.Logger
	now   func() time.Time

	queryTimeout time.Duration
	searches     chan struct{} // a token per running search

	// lists shares one query among identical list requests that arrive while it runs.
	lists singleflight.Group
	// writes counts the product writes this instance acknowledged. It is part of a shared
	// list's key, so a list asked for after a write never joins one that started before it:
	// whoever saw a write acknowledged reads a list that holds it.
	writes atomic.Uint64
}

// New builds the catalog service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("catalog: Options.Store is required")
	}
	s := &Service{store: opts.Store, log: opts.Logger, now: opts.Now, queryTimeout: opts.QueryTimeout}
	if s.queryTimeout <= 0 {
		s.queryTimeout = DefaultQueryTimeout
	}
	slots := opts.SearchSlots
	if slots <= 0 {
		slots = DefaultSearchSlots
	}
	s.searches = make(chan struct{}, slots)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Product returns product id to anyone.
func (s *Service) Product(ctx context.Context, id string) (Product, error) {
	if !validID(id) {
		return Product{}, notFound()
	}
	p, err := s.store.ByID(ctx, id)
	return p, loadError(err)
}

// ProductJSON returns product id to anyone as the JSON encoding/json writes for it,
// newline-terminated, with its version: the form the transports serve, which the store
// may build faster than a read and an encoding here.
func (s *Service) ProductJSON(ctx context.Context, id string) ([]byte, int64, error) {
	if !validID(id) {
		return nil, 0, notFound()
	}
	body, version, err := s.store.ByIDJSON(ctx, id)
	return body, version, loadError(err)
}

// Categories returns the category tree with product counts.
func (s *Service) Categories(ctx context.Context) ([]*Category, error) {
	counts, err := s.store.PathCounts(ctx)
	if err != nil {
		return nil, err
	}
	return buildTree(counts), nil
}

// List returns one page of products. Lists are not cached: filters multiply keys, and the
// indexes answer a page in about a millisecond. A page that takes longer than the query
// timeout is stopped in the database (the drivers interrupt SQLite and cancel the
// PostgreSQL statement when the context ends) and answered unavailable with a retry hint:
// no client chooses how long the database works for it.
func (s *Service) List(ctx context.Context, f Filter) (Page, error) {
	f, err := f.Normalize()
	if err != nil {
		return Page{}, err
	}
	// Identical lists asked for at once (a category page, a popular search) share one
	// query: a page is the same for every caller. The shared query runs without any one
	// caller's cancellation, under the query timeout; each caller waits with its own ctx.
	key, err := json.Marshal(struct {
		F Filter
		W uint64
	}{f, s.writes.Load()})
	if err != nil {
		return Page{}, err
	}
	ch := s.lists.DoChan(string(key), func() (any, error) {
		return s.list(context.WithoutCancel(ctx), f)
	})
	select {
	case <-ctx.Done():
		return Page{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return Page{}, res.Err
		}
		page := res.Val.(Page)
		page.Items = slices.Clone(page.Items) // each caller's own slice
		return page, nil
	}
}

// list runs one list query: searches through the bulkhead, every list under the query
// timeout.
func (s *Service) list(ctx context.Context, f Filter) (Page, error) {
	qctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	if f.Q != "" {
		// Full-text searches take turns (a bulkhead): however many arrive, they hold at
		// most searchSlots database connections, and the rest of the catalog keeps its own.
		select {
		case s.searches <- struct{}{}:
			defer func() { <-s.searches }()
		case <-qctx.Done():
			return Page{}, &plaza.Error{Code: plaza.EUnavailable, RetryAfter: time.Second,
				Message: "too many searches are running; retry shortly"}
		}
	}
	page, err := s.store.List(qctx, f)
	if err != nil && errors.Is(qctx.Err(), context.DeadlineExceeded) {
		return Page{}, &plaza.Error{Code: plaza.EUnavailable, RetryAfter: time.Second, Err: err,
			Message: "the list took longer than the server allows; narrow the search or retry"}
	}
	return page, err
}

// Create adds a product. Admins only.
func (s *Service) Create(ctx context.Context, in Input) (Product, error) {
	who, err := authorize(ctx)
	if err != nil {
		return Product{}, err
	}
	in = in.normalize()
	if err := in.Validate(); err != nil {
		return Product{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	p := Product{ID: plaza.NewID(), Version: 1, CreatedAt: now, UpdatedAt: now}
	p = p.with(in)
	ev, err := s.event(who, EventCreated, p)
	if err != nil {
		return Product{}, err
	}
	err = s.store.Create(ctx, p, ev)
	s.writes.Add(1) // even on an error: a write whose answer was lost may have committed
	if err != nil {
		return Product{}, err
	}
	return p, nil
}

// Replace sets every client field of product id to in. Admins only.
func (s *Service) Replace(ctx context.Context, id string, in Input, expect plaza.Expect) (Product, error) {
	return s.Patch(ctx, id, expect, func(Input) (Input, error) { return in, nil })
}

// Patch changes product id to what apply makes of its current fields. Admins only.
// Without a precondition a write that raced another is retried on the new version, so no
// change is lost; with one, the race is a precondition failure, checked in the same
// statement that writes.
func (s *Service) Patch(ctx context.Context, id string, expect plaza.Expect, apply func(Input) (Input, error)) (Product, error) {
	who, err := authorize(ctx)
	if err != nil {
		return Product{}, err
	}
	if apply == nil {
		return Product{}, plaza.Errorf(plaza.EBadRequest, "the change to apply is missing")
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.current(ctx, id, expect)
		if err != nil {
			return Product{}, err
		}
		in, err := apply(cur.Input())
		if err != nil {
			return Product{}, err
		}
		in = in.normalize()
		if err := in.Validate(); err != nil {
			return Product{}, err
		}
		next := cur.with(in)
		next.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
		// The event describes the product as the store will hold it: the same fields,
		// the version bumped by one.
		stored := next
		stored.Version = cur.Version + 1
		ev, err := s.event(who, EventUpdated, stored)
		if err != nil {
			return Product{}, err
		}
		updated, err := s.store.Update(ctx, next, cur.Version, ev)
		s.writes.Add(1)
		if retry(err, expect, attempt) {
			continue
		}
		if err != nil {
			return Product{}, lostRace(err, expect)
		}
		return updated, nil
	}
}

// Delete removes product id. Admins only; expect as for Patch. It returns the product as
// it was.
func (s *Service) Delete(ctx context.Context, id string, expect plaza.Expect) (Product, error) {
	who, err := authorize(ctx)
	if err != nil {
		return Product{}, err
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.current(ctx, id, expect)
		if err != nil {
			return Product{}, err
		}
		ev, err := s.event(who, EventDeleted, cur)
		if err != nil {
			return Product{}, err
		}
		err = s.store.Delete(ctx, id, cur.Version, ev)
		s.writes.Add(1)
		if retry(err, expect, attempt) {
			continue
		}
		if err != nil {
			return Product{}, lostRace(err, expect)
		}
		return cur, nil
	}
}

// current reads product id for a write and checks the precondition against it.
func (s *Service) current(ctx context.Context, id string, expect plaza.Expect) (Product, error) {
	cur, err := s.Product(ctx, id)
	if err != nil {
		return Product{}, err
	}
	if !expect.Allows(cur.Version) {
		return Product{}, stale()
	}
	return cur, nil
}

// retry reports whether a write that lost a race should run again: only without a
// client precondition (with one, the client is told) and a bounded number of times.
func retry(err error, expect plaza.Expect, attempt int) bool {
	return plaza.ErrorCodeOf(err) == plaza.EPreconditionFailed && !expect.IsSet() && attempt < updateAttempts
}

// lostRace turns a version mismatch the client did not ask to be checked into a
// conflict (it lost the race updateAttempts times and may simply retry), and gives a
// checked one the catalog's wording.
func lostRace(err error, expect plaza.Expect) error {
	if plaza.ErrorCodeOf(err) != plaza.EPreconditionFailed {
		return err
	}
	if !expect.IsSet() {
		return plaza.Wrap(plaza.EConflict, err, "the product kept changing while this write was applied; retry")
	}
	return plaza.Wrap(plaza.EPreconditionFailed, err, stale().Message)
}

// with returns p with the client fields of in.
func (p Product) with(in Input) Product {
	p.Name, p.Description, p.Currency = in.Name, in.Description, in.Currency
	p.PriceCents, p.Stock = *in.PriceCents, in.Stock
	p.Category, p.Subcategory = in.Category, in.Subcategory
	return p
}

// event is the product.* event of a write, handed to the store with it (the outbox).
func (s *Service) event(who plaza.Principal, typ string, p Product) (plaza.Outgoing, error) {
	ev, err := plaza.NewEvent(typ, who.UserID, p, s.now())
	if err != nil {
		return plaza.Outgoing{}, plaza.Wrap(plaza.EInternal, err, "internal error")
	}
	return plaza.Outgoing{Stream: plaza.StreamCatalog, Event: ev}, nil
}

// authorize lets admins write: anonymous callers are unauthenticated, others forbidden.
func authorize(ctx context.Context) (plaza.Principal, error) {
	p, ok := plaza.PrincipalFrom(ctx)
	if !ok {
		return p, plaza.Errorf(plaza.EUnauthenticated, "sign in as an admin to change the catalog")
	}
	if !p.IsAdmin() {
		return p, plaza.Errorf(plaza.EForbidden, "only admins may change the catalog")
	}
	return p, nil
}

// validID reports whether id could name a product; other IDs are answered without a query.
func validID(id string) bool { return id != "" && len(id) <= maxIDLen }

func notFound() error { return plaza.Errorf(plaza.ENotFound, "no product with this ID") }

func stale() *plaza.Error {
	return plaza.Errorf(plaza.EPreconditionFailed, "the product has changed since the version you read; fetch it again")
}

// loadError gives the store's not-found a catalog message; other errors pass unchanged.
func loadError(err error) error {
	if plaza.ErrorCodeOf(err) == plaza.ENotFound {
		return plaza.Wrap(plaza.ENotFound, err, "no product with this ID")
	}
	return err
}
