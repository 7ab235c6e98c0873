package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// TestEveryMethodRefusesHostileInput calls every exported method of the service with zero
// values and with what an attacker would send through any transport: each answers a
// client error naming the problem, never a panic and never an internal error.
func TestEveryMethodRefusesHostileInput(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	svc := newCore(t, db)
	ctx := as(context.Background(), admin)
	p, err := svc.Create(ctx, laptop())
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", 1<<20)
	neg := int64(-1)
	hostileInput := catalog.Input{Name: huge, Description: huge, PriceCents: &neg, Currency: huge, Category: huge, Subcategory: huge, Stock: -1}
	identity := func(in catalog.Input) (catalog.Input, error) { return in, nil }

	cases := []struct {
		name string
		call func() error
		want plaza.ErrorCode // "" for success
	}{
		{"Product empty ID", func() error { _, err := svc.Product(ctx, ""); return err }, plaza.ENotFound},
		{"Product huge ID", func() error { _, err := svc.Product(ctx, huge); return err }, plaza.ENotFound},
		{"Product SQL-looking ID", func() error { _, err := svc.Product(ctx, "' OR 1=1 --"); return err }, plaza.ENotFound},
		{"Categories", func() error { _, err := svc.Categories(ctx); return err }, ""},
		{"List zero filter", func() error { _, err := svc.List(ctx, catalog.Filter{}); return err }, ""},
		{"List negative limit", func() error { _, err := svc.List(ctx, catalog.Filter{Limit: -1}); return err }, plaza.EBadRequest},
		{"List huge limit", func() error { _, err := svc.List(ctx, catalog.Filter{Limit: 1 << 40}); return err }, plaza.EBadRequest},
		{"List garbage cursor", func() error { _, err := svc.List(ctx, catalog.Filter{Cursor: "%%%"}); return err }, plaza.EBadRequest},
		{"List huge cursor", func() error { _, err := svc.List(ctx, catalog.Filter{Cursor: huge}); return err }, plaza.EBadRequest},
		{"List unknown sort", func() error { _, err := svc.List(ctx, catalog.Filter{Sort: "id; DROP TABLE products"}); return err }, plaza.EBadRequest},
		{"List negative price", func() error { _, err := svc.List(ctx, catalog.Filter{MinPrice: &neg}); return err }, plaza.EBadRequest},
		{"List bad category", func() error { _, err := svc.List(ctx, catalog.Filter{Category: "../etc"}); return err }, plaza.EBadRequest},
		{"List bad subcategory", func() error { _, err := svc.List(ctx, catalog.Filter{Subcategory: huge}); return err }, plaza.EBadRequest},
		{"Create zero", func() error { _, err := svc.Create(ctx, catalog.Input{}); return err }, plaza.EInvalid},
		{"Create hostile", func() error { _, err := svc.Create(ctx, hostileInput); return err }, plaza.EInvalid},
		{"Replace empty ID", func() error { _, err := svc.Replace(ctx, "", laptop(), plaza.Expect{}); return err }, plaza.ENotFound},
		{"Replace with zero input", func() error { _, err := svc.Replace(ctx, p.ID, catalog.Input{}, plaza.Expect{}); return err }, plaza.EInvalid},
		{"Replace expecting no version", func() error { _, err := svc.Replace(ctx, p.ID, laptop(), plaza.ExpectVersion()); return err }, plaza.EPreconditionFailed},
		{"Patch without a change", func() error { _, err := svc.Patch(ctx, p.ID, plaza.Expect{}, nil); return err }, plaza.EBadRequest},
		{"Patch huge ID", func() error { _, err := svc.Patch(ctx, huge, plaza.Expect{}, identity); return err }, plaza.ENotFound},
		{"Delete empty ID", func() error { _, err := svc.Delete(ctx, "", plaza.Expect{}); return err }, plaza.ENotFound},
		{"Delete expecting a negative version", func() error { _, err := svc.Delete(ctx, p.ID, plaza.ExpectVersion(-1)); return err }, plaza.EPreconditionFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := callSafely(c.call)
			if got := plaza.ErrorCodeOf(err); got != c.want || (err != nil && plaza.AsError(err).Message == "") {
				t.Fatalf("err = %v (code %q); want code %q with a message", err, got, c.want)
			}
		})
	}
	if got, err := svc.Product(ctx, p.ID); err != nil || got != p {
		t.Fatalf("after the hostile calls the product reads %+v, %v; want it unchanged", got, err)
	}
}

// callSafely turns a panic into an error, so one panicking method fails its own case.
func callSafely(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return f()
}
