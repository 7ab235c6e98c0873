package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/redistest"
)

// grpcAddr is the address the instance's gRPC server logged; it is logged before the HTTP
// listening line start waits for.
func (in *instance) grpcAddr(t *testing.T) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(in.logs.String()))
	for sc.Scan() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "grpc server listening" {
			return l.Addr
		}
	}
	t.Fatalf("no grpc server listening line:\n%s", in.logs)
	return ""
}

// rpc is a client of one instance's gRPC API over a real TCP connection.
type rpc struct {
	conn     *grpc.ClientConn
	auth     plazav1.AuthServiceClient
	users    plazav1.UserServiceClient
	products plazav1.ProductServiceClient
	chat     plazav1.ChatServiceClient
	health   healthpb.HealthClient
}

func dialGRPC(t *testing.T, addr string, creds credentials.TransportCredentials) *rpc {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rpc{conn: conn, auth: plazav1.NewAuthServiceClient(conn), users: plazav1.NewUserServiceClient(conn),
		products: plazav1.NewProductServiceClient(conn), chat: plazav1.NewChatServiceClient(conn), health: healthpb.NewHealthClient(conn)}
}

// as is a 10-second context that calls as token's owner ("" for anonymous).
func as(t *testing.T, token string) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: got %v (%v), want %v", what, got, err, want)
	}
}

// violations are the BadRequest field violations of err, by field.
func violations(err error) map[string]string {
	out := map[string]string{}
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	return out
}

func price(c int64) *int64 { return &c }

// TestGRPCEveryRPCByRole calls every RPC as an anonymous caller, a user and an admin over
// TCP against run, and checks the code each gets: the services' rules, mapped once.
func TestGRPCEveryRPCByRole(t *testing.T) {
	t.Parallel()
	in, admin, ann, _ := chatUsers(t, nil)
	c := dialGRPC(t, in.grpcAddr(t), nil)
	me := func(token string) *plazav1.User {
		res, err := c.users.GetMe(as(t, token), &plazav1.GetMeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetUser()
	}
	annID, adminID := me(ann).GetId(), me(admin).GetId()
	annLogin := &plazav1.LoginRequest{Email: "ann@example.com", Password: strongPassword}
	freshLogin := func() *plazav1.Tokens {
		res, err := c.auth.Login(as(t, ""), annLogin)
		if err != nil {
			t.Fatal(err)
		}
		return res.GetTokens()
	}
	product := func() *plazav1.Product {
		res, err := c.products.CreateProduct(as(t, admin), &plazav1.CreateProductRequest{Product: &plazav1.Product{
			Name: "Role Mug", PriceCents: price(900), Category: "home", Subcategory: "kitchen", Stock: 3}})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetProduct()
	}
	victim := func() string {
		res, err := c.users.CreateUser(as(t, admin), &plazav1.CreateUserRequest{
			Name: "Victim", Email: "victim-" + strings.ToLower(rand.Text()[:8]) + "@example.com", Password: strongPassword})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetUser().GetId()
	}
	const (
		anon = iota
		user
		adm
	)
	tokens := [3]string{"", ann, admin}

	cases := []struct {
		rpc  string
		call func(ctx context.Context, caller int) error
		want [3]codes.Code
	}{
		{"Login", func(ctx context.Context, _ int) error {
			res, err := c.auth.Login(ctx, annLogin)
			if err == nil && (res.GetTokens().GetAccessToken() == "" || res.GetTokens().GetTokenType() != "Bearer" || res.GetTokens().GetExpiresIn() != 900) {
				t.Fatalf("login tokens %+v", res)
			}
			return err
		}, [3]codes.Code{codes.OK, codes.OK, codes.OK}},
		{"Login with a wrong password", func(ctx context.Context, _ int) error {
			_, err := c.auth.Login(ctx, &plazav1.LoginRequest{Email: "ann@example.com", Password: "not the password at all"})
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated}},
		{"Refresh", func(ctx context.Context, _ int) error {
			_, err := c.auth.Refresh(ctx, &plazav1.RefreshRequest{RefreshToken: freshLogin().GetRefreshToken()})
			return err
		}, [3]codes.Code{codes.OK, codes.OK, codes.OK}},
		{"Logout", func(_ context.Context, caller int) error {
			// Logging out ends the calling token: each caller uses a session of its own.
			tk := freshLogin()
			token := tk.GetAccessToken()
			if caller == anon {
				token = ""
			}
			if caller == adm {
				token = signIn(t, in.URL, adminEmail, adminPassword).AccessToken
			}
			_, err := c.auth.Logout(as(t, token), &plazav1.LogoutRequest{RefreshToken: tk.GetRefreshToken()})
			if err == nil {
				_, again := c.users.GetMe(as(t, token), &plazav1.GetMeRequest{})
				wantCode(t, "a logged-out token", again, codes.Unauthenticated)
			}
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.OK, codes.OK}},
		{"GetUser", func(ctx context.Context, caller int) error {
			res, err := c.users.GetUser(ctx, &plazav1.GetUserRequest{Id: adminID})
			if err == nil && (res.GetUser().GetEmail() != "") != (caller == adm) {
				t.Fatalf("admin's email as caller %d: %q", caller, res.GetUser().GetEmail())
			}
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.OK, codes.OK}},
		{"GetMe", func(ctx context.Context, caller int) error {
			res, err := c.users.GetMe(ctx, &plazav1.GetMeRequest{})
			if err == nil && res.GetUser().GetRole() != [3]plazav1.Role{0, plazav1.Role_ROLE_USER, plazav1.Role_ROLE_ADMIN}[caller] {
				t.Fatalf("GetMe as %d: %+v", caller, res.GetUser())
			}
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.OK, codes.OK}},
		{"ListUsers", func(ctx context.Context, _ int) error {
			res, err := c.users.ListUsers(ctx, &plazav1.ListUsersRequest{PageSize: 1})
			if err == nil && (len(res.GetUsers()) != 1 || res.GetNextPageToken() == "") {
				t.Fatalf("a page of one: %+v", res)
			}
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.OK}},
		{"CreateUser as admin", func(ctx context.Context, _ int) error {
			_, err := c.users.CreateUser(ctx, &plazav1.CreateUserRequest{Name: "Second Admin",
				Email: "admin-" + strings.ToLower(rand.Text()[:8]) + "@example.com", Password: strongPassword, Role: plazav1.Role_ROLE_ADMIN})
			return err
		}, [3]codes.Code{codes.PermissionDenied, codes.PermissionDenied, codes.OK}},
		{"CreateUser", func(ctx context.Context, _ int) error {
			res, err := c.users.CreateUser(ctx, &plazav1.CreateUserRequest{Name: "Newcomer",
				Email: "new-" + strings.ToLower(rand.Text()[:8]) + "@example.com", Password: strongPassword})
			if err == nil && res.GetUser().GetRole() != plazav1.Role_ROLE_USER {
				t.Fatalf("registered %+v", res.GetUser())
			}
			return err
		}, [3]codes.Code{codes.OK, codes.OK, codes.OK}},
		{"UpdateUser of Ann", func(ctx context.Context, _ int) error {
			_, err := c.users.UpdateUser(ctx, &plazav1.UpdateUserRequest{User: &plazav1.User{Id: annID, Name: "Ann"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.OK, codes.OK}},
		{"UpdateUser of the admin", func(ctx context.Context, _ int) error {
			_, err := c.users.UpdateUser(ctx, &plazav1.UpdateUserRequest{User: &plazav1.User{Id: adminID, Name: "Admin"}})
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.OK}},
		{"DeleteUser", func(ctx context.Context, _ int) error {
			return errOnly(c.users.DeleteUser(ctx, &plazav1.DeleteUserRequest{Id: victim()}))
		}, [3]codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.OK}},
		{"GetProduct", func(ctx context.Context, _ int) error {
			p := product()
			res, err := c.products.GetProduct(ctx, &plazav1.GetProductRequest{Id: p.GetId()})
			if err == nil && (res.GetProduct().GetName() != "Role Mug" || res.GetProduct().GetEtag() != `"`+p.GetId()+`-v1"`) {
				t.Fatalf("GetProduct %+v", res.GetProduct())
			}
			return err
		}, [3]codes.Code{codes.OK, codes.OK, codes.OK}},
		{"GetProduct of none", func(ctx context.Context, _ int) error {
			return errOnly(c.products.GetProduct(ctx, &plazav1.GetProductRequest{Id: "no-such-product"}))
		}, [3]codes.Code{codes.NotFound, codes.NotFound, codes.NotFound}},
		{"ListProducts", func(ctx context.Context, _ int) error {
			first, err := c.products.ListProducts(ctx, &plazav1.ListProductsRequest{Category: "electronics", Sort: "price", PageSize: 2})
			if err != nil {
				return err
			}
			next, err := c.products.ListProducts(ctx, &plazav1.ListProductsRequest{Category: "electronics", Sort: "price", PageSize: 2, PageToken: first.GetNextPageToken()})
			if err == nil && (len(first.GetProducts()) != 2 || len(next.GetProducts()) != 2 ||
				first.GetProducts()[1].GetPriceCents() > next.GetProducts()[0].GetPriceCents() || next.GetProducts()[0].GetCategory() != "electronics") {
				t.Fatalf("pages %v then %v", first.GetProducts(), next.GetProducts())
			}
			return err
		}, [3]codes.Code{codes.OK, codes.OK, codes.OK}},
		{"CreateProduct", func(ctx context.Context, _ int) error {
			return errOnly(c.products.CreateProduct(ctx, &plazav1.CreateProductRequest{Product: &plazav1.Product{
				Name: "Role Lamp", PriceCents: price(2500), Category: "home", Stock: 1}}))
		}, [3]codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.OK}},
		{"UpdateProduct", func(ctx context.Context, _ int) error {
			return errOnly(c.products.UpdateProduct(ctx, &plazav1.UpdateProductRequest{Product: &plazav1.Product{Id: product().GetId(), Stock: 9}}))
		}, [3]codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.OK}},
		{"DeleteProduct", func(ctx context.Context, _ int) error {
			return errOnly(c.products.DeleteProduct(ctx, &plazav1.DeleteProductRequest{Id: product().GetId()}))
		}, [3]codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.OK}},
		{"WatchProducts", func(ctx context.Context, _ int) error {
			stream, err := c.products.WatchProducts(ctx, &plazav1.WatchProductsRequest{Category: "books"})
			if err != nil {
				return err
			}
			// The stream is open once its headers came; a change made over REST then
			// reaches it.
			if _, err := stream.Header(); err != nil {
				return err
			}
			createProduct(t, in.URL, admin, "Watched Book")
			ev, err := stream.Recv()
			if err == nil && (ev.GetType() != plazav1.ProductEventType_PRODUCT_EVENT_TYPE_CREATED || ev.GetProduct().GetName() != "Watched Book" || ev.GetEventId() == "") {
				t.Fatalf("watched %+v", ev)
			}
			return err
		}, [3]codes.Code{codes.OK, codes.OK, codes.OK}},
		{"SendMessage", func(ctx context.Context, _ int) error {
			return errOnly(c.chat.SendMessage(ctx, &plazav1.SendMessageRequest{Room: "general", Text: "hello over gRPC"}))
		}, [3]codes.Code{codes.Unauthenticated, codes.OK, codes.OK}},
		{"SendMessage to no room", func(ctx context.Context, _ int) error {
			return errOnly(c.chat.SendMessage(ctx, &plazav1.SendMessageRequest{Room: "nowhere", Text: "hello"}))
		}, [3]codes.Code{codes.Unauthenticated, codes.NotFound, codes.NotFound}},
		{"ListMessages", func(ctx context.Context, _ int) error {
			res, err := c.chat.ListMessages(ctx, &plazav1.ListMessagesRequest{Room: "general", PageSize: 1})
			if err == nil && (len(res.GetMessages()) != 1 || res.GetMessages()[0].GetText() != "hello over gRPC") {
				t.Fatalf("history %+v", res)
			}
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.OK, codes.OK}},
		{"StreamRoom", func(ctx context.Context, _ int) error {
			stream, err := c.chat.StreamRoom(ctx, &plazav1.StreamRoomRequest{Room: "general"})
			if err != nil {
				return err
			}
			ev, err := stream.Recv()
			if err == nil && (ev.GetJoined() == nil || len(ev.GetJoined().GetHistory()) == 0 || ev.GetRoom() != "general") {
				t.Fatalf("first event %+v", ev)
			}
			return err
		}, [3]codes.Code{codes.Unauthenticated, codes.OK, codes.OK}},
	}
	for _, tc := range cases {
		for caller, want := range tc.want {
			if err := tc.call(as(t, tokens[caller]), caller); status.Code(err) != want {
				t.Errorf("%s as %s: %v, want %v", tc.rpc, [3]string{"anonymous", "user", "admin"}[caller], err, want)
			}
		}
	}
}

func errOnly[T any](_ T, err error) error { return err }

// TestGRPCMasksEtagsAndErrors: field masks change exactly what they name, a stale etag is
// FAILED_PRECONDITION, rule breaks carry BadRequest field violations, the request ID is
// echoed, an oversize message is refused and a stream ends at its deadline on the server.
func TestGRPCMasksEtagsAndErrors(t *testing.T) {
	t.Parallel()
	in, admin, ann, _ := chatUsers(t, nil)
	c := dialGRPC(t, in.grpcAddr(t), nil)
	ctx := as(t, admin)

	created, err := c.products.CreateProduct(ctx, &plazav1.CreateProductRequest{Product: &plazav1.Product{
		Id: "chosen-by-client", Version: 7, Name: "Mask Mug", Description: "blue", PriceCents: price(1899), Category: "home", Subcategory: "kitchen", Stock: 40}})
	if err != nil {
		t.Fatal(err)
	}
	p := created.GetProduct()
	if p.GetId() == "chosen-by-client" || p.GetVersion() != 1 || p.GetCurrency() != "USD" {
		t.Fatalf("created %+v", p)
	}
	v1 := p.GetEtag()

	// The mask names stock: stock becomes 0 (a zero value), the name given alongside is
	// not applied.
	res, err := c.products.UpdateProduct(ctx, &plazav1.UpdateProductRequest{
		Product:    &plazav1.Product{Id: p.GetId(), Name: "Not applied", Stock: 0},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"stock"}}, Etag: v1})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetProduct(); got.GetStock() != 0 || got.GetName() != "Mask Mug" || got.GetDescription() != "blue" || got.GetVersion() != 2 || got.GetEtag() == v1 {
		t.Fatalf("after a stock mask: %+v", got)
	}
	// REST serves the change at once: the write dropped the cached entry.
	code, body := apiJSON(t, "GET", in.URL+"/api/products/"+p.GetId(), "", "")
	if code != 200 || !strings.Contains(string(body), `"stock":0`) || !strings.Contains(string(body), `"version":2`) {
		t.Fatalf("REST after a gRPC update: %d %s", code, body)
	}
	// Without a mask, the populated fields change.
	res, err = c.products.UpdateProduct(ctx, &plazav1.UpdateProductRequest{Product: &plazav1.Product{Id: p.GetId(), Description: "green"}})
	if err != nil || res.GetProduct().GetDescription() != "green" || res.GetProduct().GetName() != "Mask Mug" || res.GetProduct().GetPriceCents() != 1899 {
		t.Fatalf("populated fields: %+v %v", res.GetProduct(), err)
	}
	_, err = c.products.UpdateProduct(ctx, &plazav1.UpdateProductRequest{Product: &plazav1.Product{Id: p.GetId(), Stock: 5},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"stock"}}, Etag: v1})
	wantCode(t, "a stale etag", err, codes.FailedPrecondition)
	wantCode(t, "a delete under a stale etag", errOnly(c.products.DeleteProduct(ctx, &plazav1.DeleteProductRequest{Id: p.GetId(), Etag: v1})), codes.FailedPrecondition)
	_, err = c.products.UpdateProduct(ctx, &plazav1.UpdateProductRequest{Product: &plazav1.Product{Id: p.GetId()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"version"}}})
	if wantCode(t, "a mask naming a server field", err, codes.InvalidArgument); violations(err)["update_mask"] == "" {
		t.Fatalf("no update_mask violation: %v", status.Convert(err).Details())
	}
	_, err = c.products.UpdateProduct(ctx, &plazav1.UpdateProductRequest{Product: &plazav1.Product{Id: p.GetId(), PriceCents: price(-1), Category: "Not A Slug"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"price_cents", "category"}}})
	if v := violations(err); status.Code(err) != codes.InvalidArgument || v["price_cents"] == "" || v["category"] == "" {
		t.Fatalf("rule breaks: %v %v", err, v)
	}
	cur, err := c.products.GetProduct(ctx, &plazav1.GetProductRequest{Id: p.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.products.DeleteProduct(ctx, &plazav1.DeleteProductRequest{Id: p.GetId(), Etag: cur.GetProduct().GetEtag()}); err != nil {
		t.Fatalf("delete under the current etag: %v", err)
	}

	// A user's mask: the name changes, the email stays; an email change needs the current
	// password.
	annID := func() string {
		r, err := c.users.GetMe(as(t, ann), &plazav1.GetMeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetUser().GetId()
	}()
	u, err := c.users.UpdateUser(as(t, ann), &plazav1.UpdateUserRequest{User: &plazav1.User{Id: annID, Name: "Ann B.", Email: "ignored@example.com"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
	if err != nil || u.GetUser().GetName() != "Ann B." || u.GetUser().GetEmail() != "ann@example.com" {
		t.Fatalf("name mask: %+v %v", u.GetUser(), err)
	}
	// Users have etags like products: a stale one is FailedPrecondition, for updates and
	// deletes alike, and the current one writes.
	stale := u.GetUser().GetEtag()
	if u.GetUser().GetVersion() < 2 || stale == "" {
		t.Fatalf("a written user's version %d, etag %q", u.GetUser().GetVersion(), stale)
	}
	u, err = c.users.UpdateUser(as(t, ann), &plazav1.UpdateUserRequest{User: &plazav1.User{Id: annID, Name: "Ann C.", Etag: stale},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
	if err != nil || u.GetUser().GetEtag() == stale {
		t.Fatalf("update with the current etag: %+v %v", u.GetUser(), err)
	}
	_, err = c.users.UpdateUser(as(t, ann), &plazav1.UpdateUserRequest{User: &plazav1.User{Id: annID, Name: "Ann D.", Etag: stale},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
	wantCode(t, "an update with a stale etag", err, codes.FailedPrecondition)
	_, err = c.users.DeleteUser(as(t, ann), &plazav1.DeleteUserRequest{Id: annID, Etag: stale})
	wantCode(t, "a delete with a stale etag", err, codes.FailedPrecondition)
	_, err = c.users.UpdateUser(as(t, ann), &plazav1.UpdateUserRequest{User: &plazav1.User{Id: annID, Email: "ann2@example.com"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}}})
	if v := violations(err); status.Code(err) != codes.InvalidArgument || v["current_password"] == "" {
		t.Fatalf("email without current_password: %v %v", err, v)
	}
	_, err = c.users.UpdateUser(as(t, ann), &plazav1.UpdateUserRequest{User: &plazav1.User{Id: annID, Role: plazav1.Role_ROLE_ADMIN},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"role"}}})
	wantCode(t, "a user making themself admin", err, codes.PermissionDenied)
	_, err = c.users.ListUsers(ctx, &plazav1.ListUsersRequest{PageToken: "not-a-cursor"})
	if wantCode(t, "a forged page token", err, codes.InvalidArgument); violations(err)["page_token"] == "" {
		t.Fatalf("violations %v", violations(err))
	}

	// x-request-id: a well-formed one is echoed, anything else replaced.
	for id, echoed := range map[string]bool{"grpc-test.1": true, "bad id!": false} {
		var header metadata.MD
		_, err := c.products.ListProducts(metadata.AppendToOutgoingContext(as(t, ""), "x-request-id", id), &plazav1.ListProductsRequest{PageSize: 1}, grpc.Header(&header))
		got := header.Get("x-request-id")
		if err != nil || len(got) != 1 || (got[0] == id) != echoed || got[0] == "" {
			t.Fatalf("x-request-id %q came back as %q (%v)", id, got, err)
		}
	}
	var header metadata.MD
	_, err = c.products.GetProduct(metadata.AppendToOutgoingContext(as(t, ""), "x-request-id", "grpc-test-404"), &plazav1.GetProductRequest{Id: "none"}, grpc.Header(&header))
	if status.Code(err) != codes.NotFound || strings.Join(header.Get("x-request-id"), "") != "grpc-test-404" {
		t.Fatalf("request ID on an error: %q %v", header.Get("x-request-id"), err)
	}

	// A message over PLAZA_MAX_BODY_BYTES (1 MiB) is refused before any handler.
	_, err = c.chat.SendMessage(as(t, ann), &plazav1.SendMessageRequest{Room: "general", Text: strings.Repeat("x", 2<<20)})
	wantCode(t, "a 2 MiB message", err, codes.ResourceExhausted)

	// A stream's deadline ends the call on both sides: the client gets DeadlineExceeded
	// and the server's handler returns and logs the call. The server's record says
	// DeadlineExceeded when its own timer (from grpc-timeout) fires first, Canceled when
	// the client's reset at its deadline arrives first; which comes first is a race
	// under load, so either is the server honouring the deadline.
	dctx, cancel := context.WithTimeout(as(t, ""), 300*time.Millisecond)
	defer cancel()
	watch, err := c.products.WatchProducts(metadata.AppendToOutgoingContext(dctx, "x-request-id", "grpc-deadline"), &plazav1.WatchProductsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = watch.Recv()
	wantCode(t, "a watch past its deadline", err, codes.DeadlineExceeded)
	eventually(t, "the server ends the stream at its deadline", func() bool {
		for line := range strings.SplitSeq(in.logs.String(), "\n") {
			if !strings.Contains(line, `"request_id":"grpc-deadline"`) {
				continue
			}
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) != nil || entry["route"] != "/plaza.v1.ProductService/WatchProducts" {
				continue
			}
			if c := entry["code"]; c == "DeadlineExceeded" || c == "Canceled" {
				return true
			}
			t.Fatalf("the stream past its deadline was logged as %v", entry["code"])
		}
		return false
	})

	// The calls are counted by method and code.
	code, body = apiJSON(t, "GET", in.URL+"/metrics", "", "")
	if code != 200 || !strings.Contains(string(body), `plaza_grpc_requests_total{code="FailedPrecondition",kind="unary",method="/plaza.v1.ProductService/UpdateProduct"} 1`) {
		t.Fatalf("metrics lack the gRPC calls: %d", code)
	}
}

// TestGRPCRateLimitAndAuthFailures: calls past a client's burst are RESOURCE_EXHAUSTED with
// RetryInfo, health checks never are, and a bad token is UNAUTHENTICATED.
func TestGRPCRateLimitAndAuthFailures(t *testing.T) {
	t.Parallel()
	in := start(t, map[string]string{"PLAZA_RATE_LIMIT": "1", "PLAZA_RATE_BURST": "3"})
	c := dialGRPC(t, in.grpcAddr(t), nil)
	wantCode(t, "a bad token", errOnly(c.users.GetMe(as(t, "not-a-jwt"), &plazav1.GetMeRequest{})), codes.Unauthenticated)
	var err error
	for range 4 {
		if _, err = c.products.ListProducts(as(t, ""), &plazav1.ListProductsRequest{PageSize: 1}); err != nil {
			break
		}
	}
	wantCode(t, "past the burst", err, codes.ResourceExhausted)
	retry := false
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			retry = true
		}
	}
	if !retry {
		t.Fatalf("no RetryInfo: %v", status.Convert(err).Details())
	}
	for range 5 {
		if res, err := c.health.Check(as(t, ""), &healthpb.HealthCheckRequest{}); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health limited: %v %v", res, err)
		}
	}
}

// TestGRPCWatchProductsAcrossInstances runs two instances on one PostgreSQL and one Redis:
// a watch on B receives a REST change made on A (in its category only) and one made on
// B, and a new watch resumes after an event ID.
func TestGRPCWatchProductsAcrossInstances(t *testing.T) {
	t.Parallel()
	env := clusterEnv(t, redistest.Start(t).URL())
	a, b := start(t, env), start(t, env)
	admin := login(t, a.URL)
	c := dialGRPC(t, b.grpcAddr(t), nil)
	watch, err := c.products.WatchProducts(as(t, ""), &plazav1.WatchProductsRequest{Category: "books"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	code, body := apiJSON(t, "POST", a.URL+"/api/products", admin, `{"name":"Other Mug","price_cents":100,"category":"home","stock":1}`)
	if code != 201 {
		t.Fatalf("create on A: %d %s", code, body)
	}
	createProduct(t, a.URL, admin, "Book From A")
	createProduct(t, b.URL, admin, "Book From B")
	first, err := watch.Recv()
	if err != nil || first.GetProduct().GetName() != "Book From A" || first.GetProduct().GetCategory() != "books" {
		t.Fatalf("first event on B: %+v %v", first, err)
	}
	second, err := watch.Recv()
	if err != nil || second.GetProduct().GetName() != "Book From B" {
		t.Fatalf("second event on B: %+v %v", second, err)
	}
	resumed, err := dialGRPC(t, a.grpcAddr(t), nil).products.WatchProducts(as(t, ""), &plazav1.WatchProductsRequest{Category: "books", AfterEventId: first.GetEventId()})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := resumed.Recv(); err != nil || ev.GetEventId() != second.GetEventId() || ev.GetProduct().GetName() != "Book From B" {
		t.Fatalf("resumed after %s: %+v %v", first.GetEventId(), ev, err)
	}
	bad, err := c.products.WatchProducts(as(t, ""), &plazav1.WatchProductsRequest{AfterEventId: "yesterday"})
	if err == nil {
		_, err = bad.Recv()
	}
	if wantCode(t, "a malformed event ID", err, codes.InvalidArgument); violations(err)["after_event_id"] == "" {
		t.Fatalf("violations %v", violations(err))
	}
}

// TestGRPCGetProductAcrossInstances runs two instances on one PostgreSQL and one Redis,
// each keeping GetProduct's encoded responses. An instance learns of another's write when
// its cache does (its REST GET shows it); from then on its GetProduct answers the new
// version too, never the old: after a REST write on A, on B; after a gRPC UpdateProduct
// on B, on A; after a REST delete on A, B answers NotFound.
func TestGRPCGetProductAcrossInstances(t *testing.T) {
	t.Parallel()
	env := clusterEnv(t, redistest.Start(t).URL())
	a, b := start(t, env), start(t, env)
	admin := login(t, a.URL)
	ga, gb := dialGRPC(t, a.grpcAddr(t), nil), dialGRPC(t, b.grpcAddr(t), nil)
	code, body := apiJSON(t, "POST", a.URL+"/api/products", admin,
		`{"name":"Mug","description":"Stoneware","price_cents":1200,"currency":"EUR","category":"home","subcategory":"kitchen","stock":5}`)
	var created struct{ ID string }
	if code != 201 || json.Unmarshal(body, &created) != nil {
		t.Fatalf("create on A: %d %s", code, body)
	}
	type fields struct {
		Name           string
		Stock, Version int64
	}
	// get waits until in's REST GET shows version, then reads the product over gRPC (twice,
	// the second from the kept response) and wants what REST showed.
	get := func(c *rpc, in *instance, version int64, what string) {
		t.Helper()
		var rest fields
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			code, body := apiJSON(t, "GET", in.URL+"/api/products/"+created.ID, "", "")
			if code == 200 && json.Unmarshal(body, &rest) == nil && rest.Version == version {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: REST still answers %d %s after 5s", what, code, body)
			}
		}
		for range 2 {
			res, err := c.products.GetProduct(as(t, ""), &plazav1.GetProductRequest{Id: created.ID})
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			p := res.GetProduct()
			if got := (fields{p.GetName(), p.GetStock(), p.GetVersion()}); got != rest {
				t.Fatalf("%s: gRPC %+v, REST %+v", what, got, rest)
			}
		}
	}
	get(gb, b, 1, "B before the write")
	get(ga, a, 1, "A before the write")

	if code, body := apiJSON(t, "PATCH", a.URL+"/api/products/"+created.ID, admin, `{"name":"Big Mug"}`); code != 200 {
		t.Fatalf("REST PATCH on A: %d %s", code, body)
	}
	get(ga, a, 2, "A after its REST write")
	get(gb, b, 2, "B after A's REST write")

	if _, err := gb.products.UpdateProduct(as(t, admin), &plazav1.UpdateProductRequest{
		Product: &plazav1.Product{Id: created.ID, Stock: 9}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"stock"}},
	}); err != nil {
		t.Fatal(err)
	}
	get(gb, b, 3, "B after its UpdateProduct")
	get(ga, a, 3, "A after B's UpdateProduct")

	if code, body := apiJSON(t, "DELETE", a.URL+"/api/products/"+created.ID, admin, ""); code != 204 {
		t.Fatalf("REST DELETE on A: %d %s", code, body)
	}
	_, err := ga.products.GetProduct(as(t, ""), &plazav1.GetProductRequest{Id: created.ID})
	wantCode(t, "A after its delete", err, codes.NotFound)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if code, _ := apiJSON(t, "GET", b.URL+"/api/products/"+created.ID, "", ""); code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B's REST GET still finds the product 5s after the delete on A")
		}
	}
	_, err = gb.products.GetProduct(as(t, ""), &plazav1.GetProductRequest{Id: created.ID})
	wantCode(t, "B after A's delete", err, codes.NotFound)
}

// TestGRPCStreamRoomAndWebSocket: a gRPC member of a room sees a WebSocket member arrive
// and receives what they send, and a gRPC-sent message reaches the WebSocket.
func TestGRPCStreamRoomAndWebSocket(t *testing.T) {
	t.Parallel()
	in, _, ann, bob := chatUsers(t, nil)
	c := dialGRPC(t, in.grpcAddr(t), nil)
	room, err := c.chat.StreamRoom(as(t, ann), &plazav1.StreamRoomRequest{Room: "general"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := room.Recv(); err != nil || ev.GetJoined() == nil {
		t.Fatalf("joined: %+v %v", ev, err)
	}
	ws := connect(t, in.URL, bob)
	ws.send(`{"type":"join","room":"general"}`)
	ws.presenceOf("Ann,Bob")
	ws.send(`{"type":"message","room":"general","text":"hi from a socket","client_id":"w1"}`)
	sawBob := false
	for {
		ev, err := room.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ev.GetPresence().GetMembers() {
			sawBob = sawBob || m.GetName() == "Bob"
		}
		if m := ev.GetMessage(); m != nil {
			if m.GetText() != "hi from a socket" || m.GetUserName() != "Bob" || m.GetClientId() != "w1" || !sawBob {
				t.Fatalf("message %+v (Bob's presence seen: %v)", m, sawBob)
			}
			break
		}
	}
	if _, err := c.chat.SendMessage(as(t, ann), &plazav1.SendMessageRequest{Room: "general", Text: "hi from gRPC"}); err != nil {
		t.Fatal(err)
	}
	for {
		// Bob's own message comes back first: its echo is his acknowledgement.
		if m := ws.next("message").msg(); m.Text == "hi from gRPC" {
			if m.UserName != "Ann" {
				t.Fatalf("on the socket: %+v", m)
			}
			break
		}
	}
}

// TestGRPCDrain: health turns NOT_SERVING as soon as the drain starts, open streams end
// with UNAVAILABLE (a health watch among them, which would otherwise hold the drain), and
// run returns nil.
func TestGRPCDrain(t *testing.T) {
	t.Parallel()
	in, _, ann, _ := chatUsers(t, map[string]string{"PLAZA_SHUTDOWN_TIMEOUT": "2m"})
	c := dialGRPC(t, in.grpcAddr(t), nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	health, err := c.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: "plaza.v1.ProductService"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := health.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("before the drain: %v %v", res, err)
	}
	room, err := c.chat.StreamRoom(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+ann), &plazav1.StreamRoomRequest{Room: "general"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := room.Recv(); err != nil {
		t.Fatal(err)
	}
	watch, err := c.products.WatchProducts(ctx, &plazav1.WatchProductsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}

	in.cancel()
	res, err := health.Recv()
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("once the drain started: %v %v", res, err)
	}
	for name, recv := range map[string]func() error{
		"health watch":   func() error { return errOnly(health.Recv()) },
		"watch products": func() error { return errOnly(watch.Recv()) },
		"stream room": func() error {
			for {
				if _, err := room.Recv(); err != nil {
					return err
				}
			}
		},
	} {
		if err := recv(); status.Code(err) != codes.Unavailable {
			t.Errorf("%s ended with %v, want Unavailable", name, err)
		}
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("run returned %v after a clean drain", err)
		}
		close(in.done)
	case <-ctx.Done():
		t.Fatal("run did not return after the drain")
	}
}

// TestGRPCOverTLS serves gRPC with a certificate from PLAZA_GRPC_TLS_CERT/_KEY: a client
// trusting it calls, a plaintext client cannot.
func TestGRPCOverTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	in := start(t, map[string]string{"PLAZA_GRPC_TLS_CERT": certFile, "PLAZA_GRPC_TLS_KEY": keyFile})
	c := dialGRPC(t, in.grpcAddr(t), credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}))
	if res, err := c.products.ListProducts(as(t, ""), &plazav1.ListProductsRequest{PageSize: 1}); err != nil || len(res.GetProducts()) != 1 {
		t.Fatalf("over TLS: %v %v", res, err)
	}
	plain := dialGRPC(t, in.grpcAddr(t), nil)
	wantCode(t, "plaintext to a TLS server", errOnly(plain.products.ListProducts(as(t, ""), &plazav1.ListProductsRequest{PageSize: 1})), codes.Unavailable)
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "plaza test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestGRPCurl drives the API the way the README shows, with grpcurl (make tools installs
// it into bin/tools): the services are listed by reflection and GetProduct answers.
func TestGRPCurl(t *testing.T) {
	t.Parallel()
	grpcurl := filepath.Join("..", "..", "bin", "tools", "grpcurl")
	if _, err := os.Stat(grpcurl); err != nil {
		if grpcurl, err = exec.LookPath("grpcurl"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("grpcurl is not installed; make tools installs it")
			}
			t.Skip("grpcurl is not installed; make tools installs it")
		}
	}
	in := start(t, nil)
	addr := in.grpcAddr(t)
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, grpcurl, append([]string{"-plaintext"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	list := run(addr, "list")
	for _, svc := range []string{"plaza.v1.AuthService", "plaza.v1.UserService", "plaza.v1.ProductService", "plaza.v1.ChatService", "grpc.health.v1.Health"} {
		if !strings.Contains(list, svc+"\n") {
			t.Errorf("reflection does not list %s:\n%s", svc, list)
		}
	}
	var page struct {
		Products []struct{ ID, Name, Etag string }
	}
	if err := json.Unmarshal([]byte(run("-d", `{"page_size":1}`, addr, "plaza.v1.ProductService/ListProducts")), &page); err != nil || len(page.Products) != 1 {
		t.Fatalf("ListProducts: %+v %v", page, err)
	}
	var got struct {
		Product struct{ ID, Name, Etag string }
	}
	out := run("-d", `{"id":"`+page.Products[0].ID+`"}`, addr, "plaza.v1.ProductService/GetProduct")
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Product != page.Products[0] || got.Product.Etag == "" {
		t.Fatalf("GetProduct: %s", out)
	}
}
