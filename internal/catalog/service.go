package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"plaza/internal/bus"
	"plaza/internal/cache"
	"plaza/internal/plaza"
)

// Store keeps products. internal/store implements it on SQLite and PostgreSQL; its errors
// are *plaza.Error.
type Store interface {
	// ByID returns a product or ENotFound.
	ByID(ctx context.Context, id string) (Product, error)
	// List returns a page of a normalized filter (see Filter.Normalize); a cursor it did not
	// issue for that sort is EBadRequest.
	List(ctx context.Context, f Filter) (Page, error)
	// Insert adds products in one transaction.
	Insert(ctx context.Context, ps ...Product) error
	// InsertDemo inserts ps unless demo data was offered before or products exist; it
	// reports whether it inserted. Instances starting together seed at most once.
	InsertDemo(ctx context.Context, ps []Product) (bool, error)
	// Update writes p's client fields and UpdatedAt if the stored version is still version,
	// bumps the version and returns the stored product. ENotFound when p.ID is gone,
	// EPreconditionFailed when the version moved on.
	Update(ctx context.Context, p Product, version int64) (Product, error)
	// Delete removes the product if its stored version is still version; errors as Update.
	Delete(ctx context.Context, id string, version int64) error
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

// Cache keys and lifetimes. Writes delete the keys they affect on every instance; the TTL
// only bounds how long a load that raced a write (read the old row, stored it after the
// write's delete) can serve the old version.
const (
	categoriesKey = "categories"
	productTTL    = time.Minute
	categoriesTTL = time.Minute
	// maxIDLen: longer IDs cannot exist; they are answered without a query or a cache key.
	maxIDLen = 64
	// updateAttempts bounds retries of an unconditional write that raced another write.
	updateAttempts = 3
)

func productKey(id string) string { return "product:" + id }

// Service is the catalog: everyone may read, admins may write.
type Service struct {
	store Store
	cache *cache.Cache
	bus   bus.Bus
	log   *slog.Logger
	now   func() time.Time
}

// NewService builds the catalog over a store, the shared cache and the event bus.
func NewService(st Store, c *cache.Cache, b bus.Bus, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: st, cache: c, bus: b, log: log, now: time.Now}
}

// Encoded is a read served from its encoded form: the JSON body (newline-terminated), the
// ETag when the resource has one, and whether it came from the cache.
type Encoded struct {
	JSON []byte
	ETag string
	Hit  bool
}

// ProductJSON returns a product as JSON with its ETag, from the cache when it is there.
// The cache holds the encoded bytes, so a hit costs no query and no encoding.
func (s *Service) ProductJSON(ctx context.Context, id string) (Encoded, error) {
	if id == "" || len(id) > maxIDLen {
		return Encoded{}, notFound()
	}
	val, hit, err := s.cache.GetOrLoad(ctx, productKey(id), productTTL, func(ctx context.Context) ([]byte, error) {
		p, err := s.store.ByID(ctx, id)
		if err != nil {
			return nil, err
		}
		return encodeEntry(p)
	})
	if err != nil {
		return Encoded{}, loadError(err)
	}
	etag, body, ok := bytes.Cut(val, []byte{'\n'})
	if !ok {
		// Not written by encodeEntry (another version of Plaza sharing the cache): drop it.
		_ = s.cache.Delete(ctx, productKey(id))
		return Encoded{}, plaza.Errorf(plaza.EUnavailable, "the cached product was unreadable; retry")
	}
	return Encoded{JSON: body, ETag: string(etag), Hit: hit}, nil
}

// encodeEntry is a product's cache entry: its ETag, a newline, then its JSON body.
func encodeEntry(p Product) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(p.ETag())
	buf.WriteByte('\n')
	if err := json.NewEncoder(&buf).Encode(p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CategoriesJSON returns the category tree as JSON, from the cache when it is there.
func (s *Service) CategoriesJSON(ctx context.Context) (Encoded, error) {
	val, hit, err := s.cache.GetOrLoad(ctx, categoriesKey, categoriesTTL, func(ctx context.Context) ([]byte, error) {
		counts, err := s.store.PathCounts(ctx)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(buildTree(counts)); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	})
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{JSON: val, Hit: hit}, nil
}

// List returns one page of products. Lists are not cached: filters multiply keys, and the
// indexes answer a page in about a millisecond.
func (s *Service) List(ctx context.Context, f Filter) (Page, error) {
	f, err := f.Normalize()
	if err != nil {
		return Page{}, err
	}
	return s.store.List(ctx, f)
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
	if err := s.store.Insert(ctx, p); err != nil {
		return Product{}, err
	}
	s.after(ctx, who, EventCreated, p, categoriesKey)
	return p, nil
}

// Replace sets every client field of product id to in. Admins only. ifMatch holds the
// entity tags of an If-Match precondition (nil: none; "*": any current version).
func (s *Service) Replace(ctx context.Context, id string, in Input, ifMatch []string) (Product, error) {
	return s.Patch(ctx, id, ifMatch, func(Input) (Input, error) { return in, nil })
}

// Patch changes product id to what apply makes of its current fields. Admins only.
// Without a precondition a write that raced another is retried on the new version, so no
// change is lost; with one, the race is a precondition failure, checked in the same
// statement that writes.
func (s *Service) Patch(ctx context.Context, id string, ifMatch []string, apply func(Input) (Input, error)) (Product, error) {
	who, err := authorize(ctx)
	if err != nil {
		return Product{}, err
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.current(ctx, id, ifMatch)
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
		updated, err := s.store.Update(ctx, next, cur.Version)
		if retry(err, ifMatch, attempt) {
			continue
		}
		if err != nil {
			return Product{}, lostRace(err, ifMatch)
		}
		keys := []string{productKey(id)}
		if updated.Category != cur.Category || updated.Subcategory != cur.Subcategory {
			keys = append(keys, categoriesKey)
		}
		s.after(ctx, who, EventUpdated, updated, keys...)
		return updated, nil
	}
}

// Delete removes product id. Admins only; ifMatch as for Replace.
func (s *Service) Delete(ctx context.Context, id string, ifMatch []string) error {
	who, err := authorize(ctx)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.current(ctx, id, ifMatch)
		if err != nil {
			return err
		}
		err = s.store.Delete(ctx, id, cur.Version)
		if retry(err, ifMatch, attempt) {
			continue
		}
		if err != nil {
			return lostRace(err, ifMatch)
		}
		s.after(ctx, who, EventDeleted, cur, productKey(id), categoriesKey)
		return nil
	}
}

// current reads product id for a write and checks the client's If-Match against it.
func (s *Service) current(ctx context.Context, id string, ifMatch []string) (Product, error) {
	if id == "" || len(id) > maxIDLen {
		return Product{}, notFound()
	}
	cur, err := s.store.ByID(ctx, id)
	if err != nil {
		return Product{}, loadError(err)
	}
	if len(ifMatch) > 0 && !matchesAny(ifMatch, cur.ETag()) {
		return Product{}, stale()
	}
	return cur, nil
}

// retry reports whether a write that lost a race should run again: only without a
// client precondition (with one, the client is told) and a bounded number of times.
func retry(err error, ifMatch []string, attempt int) bool {
	return plaza.ErrorCodeOf(err) == plaza.EPreconditionFailed && len(ifMatch) == 0 && attempt < updateAttempts
}

// lostRace turns a version mismatch the client did not ask to be checked (no If-Match)
// into a conflict: it lost the race updateAttempts times and may simply retry.
func lostRace(err error, ifMatch []string) error {
	if plaza.ErrorCodeOf(err) == plaza.EPreconditionFailed && len(ifMatch) == 0 {
		return plaza.Wrap(plaza.EConflict, err, "the product kept changing while this write was applied; retry")
	}
	return err
}

// matchesAny is If-Match's strong comparison: weak tags (W/"…") never match.
func matchesAny(tags []string, etag string) bool {
	for _, t := range tags {
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// with returns p with the client fields of in.
func (p Product) with(in Input) Product {
	p.Name, p.Description, p.Currency = in.Name, in.Description, in.Currency
	p.PriceCents, p.Stock = *in.PriceCents, in.Stock
	p.Category, p.Subcategory = in.Category, in.Subcategory
	return p
}

// after runs once a write has committed: it drops the affected cache keys on every
// instance and publishes the event. Neither can undo the write, so failures are logged,
// and neither is skipped because the client went away.
func (s *Service) after(ctx context.Context, who plaza.Principal, typ string, p Product, keys ...string) {
	ctx = context.WithoutCancel(ctx)
	if err := s.cache.Delete(ctx, keys...); err != nil {
		s.log.WarnContext(ctx, "catalog: cache invalidation failed; entries expire within their TTL",
			"keys", keys, "err", err)
	}
	ev, err := plaza.NewEvent(typ, who.UserID, p, s.now())
	if err == nil {
		_, err = s.bus.Publish(ctx, plaza.StreamCatalog, ev)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "catalog: event not published", "type", typ, "product_id", p.ID, "err", err)
	}
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

func notFound() error { return plaza.Errorf(plaza.ENotFound, "no product with this ID") }

func stale() error {
	return plaza.Errorf(plaza.EPreconditionFailed, "the product has changed since the ETag you sent; fetch it again")
}

// loadError gives the store's not-found a catalog message; other errors pass unchanged.
func loadError(err error) error {
	if plaza.ErrorCodeOf(err) == plaza.ENotFound {
		return plaza.Wrap(plaza.ENotFound, err, "no product with this ID")
	}
	return err
}
