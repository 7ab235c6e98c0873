package users_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
	"plaza/internal/users"
)

// TestEveryMethodRefusesHostileInput calls every exported method of the service with zero
// values and with what an attacker would send through any transport (empty, huge, negative,
// garbage, nil callbacks): each answers a client error naming the problem, never a panic
// and never an internal error. Transports get this by construction: they pass input on.
func TestEveryMethodRefusesHostileInput(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s := newService(t, db, nil, cheap)
	admin := plaza.WithPrincipal(context.Background(), users.Operator)
	ann, err := s.Register(context.Background(), users.NewUser{Name: "Ann", Email: "ann@example.com", Password: "correct horse battery staple"})
	if err != nil {
		t.Fatal(err)
	}
	asAnn := plaza.WithPrincipal(context.Background(), plaza.Principal{UserID: ann.ID, Role: plaza.RoleUser})
	huge := strings.Repeat("x", 1<<20)
	badRole := plaza.Role("root")
	empty := ""

	cases := []struct {
		name string
		call func() error
		want []plaza.ErrorCode
	}{
		{"Register zero", func() error { _, err := s.Register(admin, users.NewUser{}); return err }, codes(plaza.EInvalid)},
		{"Register huge", func() error {
			_, err := s.Register(admin, users.NewUser{Name: huge, Email: huge + "@example.com", Password: huge})
			return err
		}, codes(plaza.EInvalid)},
		{"Register unknown role", func() error {
			_, err := s.Register(admin, users.NewUser{Name: "Bob", Email: "bob@example.com", Password: "correct horse battery staple", Role: badRole})
			return err
		}, codes(plaza.EInvalid)},
		{"List zero limit is the default", func() error { _, err := s.List(admin, plaza.PageRequest{}); return err }, nil},
		{"List negative limit", func() error { _, err := s.List(admin, plaza.PageRequest{Limit: -1}); return err }, codes(plaza.EBadRequest)},
		{"List limit past the maximum", func() error { _, err := s.List(admin, plaza.PageRequest{Limit: 1 << 40}); return err }, codes(plaza.EBadRequest)},
		{"List garbage cursor", func() error { _, err := s.List(admin, plaza.PageRequest{Cursor: "%%%"}); return err }, codes(plaza.EBadRequest)},
		{"List huge cursor", func() error { _, err := s.List(admin, plaza.PageRequest{Cursor: huge}); return err }, codes(plaza.EBadRequest)},
		{"Get empty ID", func() error { _, err := s.Get(admin, ""); return err }, codes(plaza.ENotFound)},
		{"Get huge ID", func() error { _, err := s.Get(admin, huge); return err }, codes(plaza.ENotFound)},
		{"Update unknown user", func() error { _, err := s.Update(admin, "", plaza.Expect{}, users.Changes{}); return err }, codes(plaza.ENotFound)},
		{"Update to empty name", func() error {
			_, err := s.Update(asAnn, ann.ID, plaza.Expect{}, users.Changes{Name: &empty})
			return err
		}, codes(plaza.EInvalid)},
		{"Update to unknown role", func() error {
			_, err := s.Update(admin, ann.ID, plaza.Expect{}, users.Changes{Role: &badRole})
			return err
		}, codes(plaza.EInvalid)},
		{"Patch without a change", func() error { _, err := s.Patch(asAnn, ann.ID, plaza.Expect{}, nil); return err }, codes(plaza.EBadRequest)},
		{"Patch whose change fails", func() error {
			_, err := s.Patch(asAnn, ann.ID, plaza.Expect{}, func(users.Editable) (users.Changes, error) {
				return users.Changes{}, plaza.Errorf(plaza.EBadRequest, "bad patch")
			})
			return err
		}, codes(plaza.EBadRequest)},
		{"Delete unknown user", func() error { return s.Delete(admin, "", plaza.Expect{}) }, codes(plaza.ENotFound)},
		{"Me anonymous", func() error { _, err := s.Me(context.Background()); return err }, codes(plaza.EUnauthenticated)},
		{"Login zero", func() error { _, err := s.Login(context.Background(), "", ""); return err }, codes(plaza.EInvalid)},
		{"Login huge", func() error { _, err := s.Login(context.Background(), huge, huge); return err }, codes(plaza.EUnauthenticated, plaza.EInvalid)},
		{"Refresh zero", func() error { _, err := s.Refresh(context.Background(), ""); return err }, codes(plaza.EInvalid)},
		{"Refresh garbage", func() error { _, err := s.Refresh(context.Background(), huge); return err }, codes(plaza.EUnauthenticated)},
		{"Logout zero", func() error { return s.Logout(asAnn, "") }, codes(plaza.EInvalid)},
		// Logging out of a session that does not exist succeeds: logout is idempotent and
		// tells nothing about which tokens are live.
		{"Logout garbage", func() error { return s.Logout(asAnn, huge) }, nil},
		{"Authenticate zero", func() error { _, err := s.Authenticate(context.Background(), ""); return err }, codes(plaza.EUnauthenticated)},
		{"Authenticate garbage", func() error { _, err := s.Authenticate(context.Background(), huge); return err }, codes(plaza.EUnauthenticated)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := callSafely(c.call)
			got := plaza.ErrorCodeOf(err)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("err = %v; want none", err)
				}
				return
			}
			for _, w := range c.want {
				if got == w {
					if plaza.AsError(err).Message == "" {
						t.Fatalf("%s error without a message", got)
					}
					return
				}
			}
			t.Fatalf("err = %v (code %q); want one of %v", err, got, c.want)
		})
	}
}

func codes(c ...plaza.ErrorCode) []plaza.ErrorCode { return c }

// callSafely turns a panic into an error, so one panicking method fails its own case.
func callSafely(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return f()
}
