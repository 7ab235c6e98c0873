package grpcapi

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/cache"
	"plaza/internal/catalog"
	"plaza/internal/catalog/cached"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

var admin = plaza.Principal{UserID: "admin-1", Role: plaza.RoleAdmin}

// adminToken is the one bearer token the test authenticator accepts, as admin.
const adminToken = "admin-token"

type tokenAuth struct{}

func (tokenAuth) Authenticate(_ context.Context, token string) (plaza.Principal, error) {
	if token != adminToken {
		return plaza.Principal{}, plaza.Errorf(plaza.EUnauthenticated, "bad token")
	}
	return admin, nil
}

// catalogServer is a gRPC server over a real catalog on SQLite behind the shared cache (an
// in-memory backend, as a single instance runs), listening on loopback.
type catalogServer struct {
	svc      *catalog.Service
	backend  cache.Backend
	products *cached.Catalog
	addr     string
}

func newCatalogServer(t testing.TB, readThrough bool, opts Options) *catalogServer {
	t.Helper()
	svc, err := catalog.New(catalog.Options{Store: storetest.Open(t, store.SQLite).Products()})
	if err != nil {
		t.Fatal(err)
	}
	backend := cache.NewMemory(1000)
	c := cache.New(backend, cache.Options{})
	t.Cleanup(func() { c.Close() })
	products := cached.New(svc, c, nil)
	if readThrough {
		products.SkipProductCache()
	}
	opts.Catalog, opts.Auth = products, tokenAuth{}
	srv := New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Close)
	return &catalogServer{svc: svc, backend: backend, products: products, addr: ln.Addr().String()}
}

func dial(t testing.TB, addr string) plazav1.ProductServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return plazav1.NewProductServiceClient(conn)
}

// everyField is a product input with every client field set.
func everyField(name string) catalog.Input {
	price := int64(12345)
	return catalog.Input{Name: name, Description: "Stoneware, 350 ml; dishwasher safe. ☕", PriceCents: &price,
		Currency: "EUR", Category: "home", Subcategory: "kitchen/mugs", Stock: 42}
}

// want is the response GetProduct built before responses were kept: the product read from
// the database, converted.
func want(t *testing.T, svc *catalog.Service, id string) *plazav1.GetProductResponse {
	t.Helper()
	p, err := svc.Product(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return &plazav1.GetProductResponse{Product: productPB(p)}
}

func getEqual(t *testing.T, c plazav1.ProductServiceClient, svc *catalog.Service, id, what string) *plazav1.Product {
	t.Helper()
	got, err := c.GetProduct(t.Context(), &plazav1.GetProductRequest{Id: id})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if w := want(t, svc, id); !proto.Equal(got, w) {
		t.Fatalf("%s:\n got %v\nwant %v", what, got, w)
	}
	return got.GetProduct()
}

// TestGetProductFollowsEveryWrite: GetProduct over a socket answers exactly what the
// conversion of the stored product gives, every field set, on the first read and on the
// reads that reuse its encoded response; after a write through the shared catalog (as
// REST's PATCH) and after a gRPC UpdateProduct it answers the new version at once, and a
// deleted product is NotFound. With the product cache on, and off (every read from the
// database).
func TestGetProductFollowsEveryWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		readThrough bool
	}{{"cache on", false}, {"cache off", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newCatalogServer(t, tc.readThrough, Options{})
			c := dial(t, s.addr)
			ctx := plaza.WithPrincipal(t.Context(), admin)
			p, err := s.products.Create(ctx, everyField("Mug"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if got := getEqual(t, c, s.svc, p.ID, "read"); got.GetVersion() != 1 || got.GetName() != "Mug" {
					t.Fatalf("read %d: %v", i, got)
				}
			}
			// Compressed for a client that asks: the kept bytes are the input, not the output.
			gz, err := c.GetProduct(t.Context(), &plazav1.GetProductRequest{Id: p.ID}, grpc.UseCompressor(gzip.Name))
			if w := want(t, s.svc, p.ID); err != nil || !proto.Equal(gz, w) {
				t.Fatalf("gzip: %v %v, want %v", gz, err, w)
			}
			getEqual(t, c, s.svc, p.ID, "read after the compressed one")

			if _, err := s.products.Replace(ctx, p.ID, everyField("Big Mug"), plaza.Expect{}); err != nil {
				t.Fatal(err)
			}
			if got := getEqual(t, c, s.svc, p.ID, "after a write through the catalog"); got.GetVersion() != 2 || got.GetName() != "Big Mug" {
				t.Fatalf("after a write through the catalog: %v", got)
			}

			auth := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+adminToken)
			if _, err := c.UpdateProduct(auth, &plazav1.UpdateProductRequest{
				Product: &plazav1.Product{Id: p.ID, Stock: 7}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"stock"}},
			}); err != nil {
				t.Fatal(err)
			}
			if got := getEqual(t, c, s.svc, p.ID, "after UpdateProduct"); got.GetVersion() != 3 || got.GetStock() != 7 {
				t.Fatalf("after UpdateProduct: %v", got)
			}

			if _, err := c.DeleteProduct(auth, &plazav1.DeleteProductRequest{Id: p.ID}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetProduct(t.Context(), &plazav1.GetProductRequest{Id: p.ID}); status.Code(err) != codes.NotFound {
				t.Fatalf("deleted: %v, want NotFound", err)
			}
			if _, err := c.GetProduct(t.Context(), &plazav1.GetProductRequest{Id: "no-such-id"}); status.Code(err) != codes.NotFound {
				t.Fatalf("unknown id: %v, want NotFound", err)
			}
		})
	}
}

// TestGetProductWhileWriting: callers reading while a product is rewritten never get a
// version older than the last write completed before their call, nor the content of one
// version under another's number.
func TestGetProductWhileWriting(t *testing.T) {
	t.Parallel()
	s := newCatalogServer(t, false, Options{})
	ctx := plaza.WithPrincipal(t.Context(), admin)
	p, err := s.products.Create(ctx, everyField("Mug v1"))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.addr)
	var written atomic.Int64
	written.Store(1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				floor := written.Load()
				res, err := c.GetProduct(t.Context(), &plazav1.GetProductRequest{Id: p.ID})
				if err != nil {
					t.Error(err)
					return
				}
				got := res.GetProduct()
				if got.GetVersion() < floor || got.GetName() != "Mug v"+strconv.FormatInt(got.GetVersion(), 10) {
					t.Errorf("read after version %d was written: %v", floor, got)
					return
				}
			}
		})
	}
	for v := int64(2); v <= 30; v++ {
		if _, err := s.products.Replace(ctx, p.ID, everyField("Mug v"+strconv.FormatInt(v, 10)), plaza.Expect{}); err != nil {
			t.Fatal(err)
		}
		written.Store(v)
	}
	close(done)
	wg.Wait()
}

// TestGetProductUnreadableEntry: a cache entry in a shape this version cannot decode (left
// by another version of Plaza) is not served: the product comes from the database.
func TestGetProductUnreadableEntry(t *testing.T) {
	t.Parallel()
	s := newCatalogServer(t, false, Options{})
	p, err := s.products.Create(plaza.WithPrincipal(t.Context(), admin), everyField("Mug"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.backend.Set(t.Context(), "product:"+p.ID, []byte("\"some-tag\"\n{\"name\": 17}\n"), 0); err != nil {
		t.Fatal(err)
	}
	getEqual(t, dial(t, s.addr), s.svc, p.ID, "unreadable entry")
}

// TestGetProductMetadataAndInterceptors: a call answered from a kept response still goes
// through the chain: the request ID is echoed, a bad token is refused before the catalog
// is read, and the rate limit applies.
func TestGetProductMetadataAndInterceptors(t *testing.T) {
	t.Parallel()
	s := newCatalogServer(t, false, Options{RateLimit: 0.001, RateBurst: 3})
	p, err := s.products.Create(plaza.WithPrincipal(t.Context(), admin), everyField("Mug"))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.addr)
	getEqual(t, c, s.svc, p.ID, "first read")
	var header metadata.MD
	ctx := metadata.AppendToOutgoingContext(t.Context(), requestIDKey, "req-123")
	if _, err := c.GetProduct(ctx, &plazav1.GetProductRequest{Id: p.ID}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if got := header.Get(requestIDKey); len(got) != 1 || got[0] != "req-123" {
		t.Fatalf("x-request-id %v", got)
	}
	bad := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer wrong")
	if _, err := c.GetProduct(bad, &plazav1.GetProductRequest{Id: p.ID}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("bad token: %v", err)
	}
	// The refused call took no token: the burst of 3 has one left.
	getEqual(t, c, s.svc, p.ID, "third read")
	if _, err := c.GetProduct(t.Context(), &plazav1.GetProductRequest{Id: p.ID}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("fourth read of a burst of 3: %v", err)
	}
}

// TestResponsesBound: a kept response is returned only for the entry it was built from,
// a new version replaces the old, and the least recently read go past the byte bound.
func TestResponsesBound(t *testing.T) {
	t.Parallel()
	body := make([]byte, 100)
	per := len("p0") + len(`"p0-v1"`) + len(body) + entryOverhead
	r := newResponses(3 * per)
	sum := r.sum([]byte(`{"id":"p0"}`))
	for _, id := range []string{"p0", "p1", "p2"} {
		r.put(id, `"`+id+`-v1"`, sum, body)
	}
	if _, ok := r.get("p0", `"p0-v1"`, sum); !ok {
		t.Fatal("p0 not kept")
	}
	if _, ok := r.get("p0", `"p0-v2"`, sum); ok {
		t.Fatal("p0 answered for another entity tag")
	}
	if _, ok := r.get("p0", `"p0-v1"`, sum+1); ok {
		t.Fatal("p0 answered for another body")
	}
	r.put("p3", `"p3-v1"`, sum, body) // p1 is now the least recently read
	if _, ok := r.get("p1", `"p1-v1"`, sum); ok {
		t.Fatal("p1 kept beyond the bound")
	}
	for _, id := range []string{"p0", "p2", "p3"} {
		if _, ok := r.get(id, `"`+id+`-v1"`, sum); !ok {
			t.Fatalf("%s evicted", id)
		}
	}
	r.put("p0", `"p0-v2"`, sum, body)
	if _, ok := r.get("p0", `"p0-v1"`, sum); ok {
		t.Fatal("the old version of p0 still answered")
	}
	if _, ok := r.get("p0", `"p0-v2"`, sum); !ok || r.size > r.max || len(r.byID) != 3 {
		t.Fatalf("after replacing p0: size %d of %d, %d entries", r.size, r.max, len(r.byID))
	}
}
