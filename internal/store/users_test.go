package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
	"plaza/internal/users"
)

func newTestUser(name, email string, at time.Time) users.User {
	return users.User{ID: plaza.NewID(), Name: name, Email: email, Role: plaza.RoleUser, Version: 1, CreatedAt: at, UpdatedAt: at}
}

// createUser stores a new user with the password hash given.
func createUser(t *testing.T, s store.Users, name, email, hash string, at time.Time) users.User {
	t.Helper()
	u := newTestUser(name, email, at)
	if err := s.Create(t.Context(), u, hash); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUsersStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		accounts, tokens := db.Users(), db.RefreshTokens()
		at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

		ann := createUser(t, accounts, "Ann", "Ann.Smith@Example.com", "hash-ann", at)
		// Emails are unique whatever their case; IDs are unique.
		if err := accounts.Create(ctx, newTestUser("Other", "ann.smith@EXAMPLE.com", at), "h"); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("case-variant email: %v, want conflict", err)
		}
		dup := newTestUser("Dup", "dup@example.com", at)
		dup.ID = ann.ID
		if err := accounts.Create(ctx, dup, "h"); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("duplicate id: %v, want conflict", err)
		}

		got, err := accounts.ByID(ctx, ann.ID)
		want := ann
		want.CreatedAt, want.UpdatedAt = at.Truncate(time.Microsecond), at.Truncate(time.Microsecond)
		if err != nil || got != want {
			t.Fatalf("UserByID = %+v, %v; want %+v", got, err, want)
		}
		got, hash, err := accounts.ByEmail(ctx, "  ANN.smith@example.COM ")
		if err != nil || got.ID != ann.ID || got.Email != "Ann.Smith@Example.com" || hash != "hash-ann" {
			t.Fatalf("UserByEmail = %+v, %q, %v", got, hash, err)
		}
		if _, err := accounts.ByID(ctx, "nope"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("unknown id: %v", err)
		}
		if _, _, err := accounts.ByEmail(ctx, "nobody@example.com"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("unknown email: %v", err)
		}

		// Update: "" keeps the hash, a value replaces it; a taken email conflicts.
		bob := createUser(t, accounts, "Bob", "bob@example.com", "hash-bob", at)

		// ByIDs: the ones that exist, repeats and unknown IDs ignored, in one query.
		many, err := accounts.ByIDs(ctx, []string{bob.ID, "nope", ann.ID, bob.ID})
		if err != nil || len(many) != 2 || many[0].ID == many[1].ID || (many[0].ID != ann.ID && many[0].ID != bob.ID) || (many[1].ID != ann.ID && many[1].ID != bob.ID) {
			t.Fatalf("ByIDs = %+v, %v", many, err)
		}
		if none, err := accounts.ByIDs(ctx, nil); err != nil || len(none) != 0 {
			t.Fatalf("ByIDs(nil) = %+v, %v", none, err)
		}
		ann.Name, ann.Role, ann.UpdatedAt = "Ann S.", plaza.RoleAdmin, at.Add(time.Hour)
		if err := accounts.Update(ctx, ann, "", 1); err != nil {
			t.Fatal(err)
		}
		got, hash, _ = accounts.ByEmail(ctx, ann.Email)
		if got.Version != 2 || got.Name != "Ann S." || got.Role != plaza.RoleAdmin || !got.UpdatedAt.Equal(at.Add(time.Hour).Truncate(time.Microsecond)) || hash != "hash-ann" {
			t.Fatalf("after update: %+v %q", got, hash)
		}
		ann.Email = "ann@example.com"
		if err := accounts.Update(ctx, ann, "hash-ann-2", 1); plaza.ErrorCodeOf(err) != plaza.EPreconditionFailed {
			t.Fatalf("update of a stale version: %v", err)
		}
		if err := accounts.Update(ctx, ann, "hash-ann-2", 2); err != nil {
			t.Fatal(err)
		}
		if _, hash, err := accounts.ByEmail(ctx, "ANN@example.com"); err != nil || hash != "hash-ann-2" {
			t.Fatalf("new email and hash: %q %v", hash, err)
		}
		if _, _, err := accounts.ByEmail(ctx, "ann.smith@example.com"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("old email still found: %v", err)
		}
		ann.Email = "BOB@example.com"
		if err := accounts.Update(ctx, ann, "", 3); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("taken email: %v", err)
		}
		if err := accounts.Update(ctx, newTestUser("X", "x@example.com", at), "", 1); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("update unknown: %v", err)
		}

		// Deleting a user deletes their refresh tokens.
		tok := users.RefreshToken{Hash: bytes.Repeat([]byte{1}, 32), Family: "f-bob", UserID: bob.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
		if err := tokens.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := accounts.Delete(ctx, bob.ID, 2); plaza.ErrorCodeOf(err) != plaza.EPreconditionFailed {
			t.Fatalf("delete of a stale version: %v", err)
		}
		if err := accounts.Delete(ctx, bob.ID, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := accounts.ByID(ctx, bob.ID); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("deleted user still there: %v", err)
		}
		if _, err := tokens.ByHash(ctx, tok.Hash); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("deleted user's refresh token still there: %v", err)
		}
		if err := accounts.Delete(ctx, bob.ID, 1); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("delete twice: %v", err)
		}

		// Ann is the only admin now: she can neither stop being one nor be deleted, until
		// another admin exists.
		ann.Email, ann.Role = "ann@example.com", plaza.RoleUser
		if err := accounts.Update(ctx, ann, "", 3); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("demoting the last admin: %v", err)
		}
		if err := accounts.Delete(ctx, ann.ID, 3); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("deleting the last admin: %v", err)
		}
		cy := createUser(t, accounts, "Cy", "cy@example.com", "hash-cy", at)
		cy.Role = plaza.RoleAdmin
		if err := accounts.Update(ctx, cy, "", 1); err != nil {
			t.Fatal(err)
		}
		if err := accounts.Update(ctx, ann, "", 3); err != nil {
			t.Fatalf("demoting one of two admins: %v", err)
		}
		if err := accounts.Delete(ctx, cy.ID, 2); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("deleting the new last admin: %v", err)
		}
	})
}

// TestLastAdminUnderRace: two admins demoting each other at the same moment cannot leave
// the deployment without one.
func TestLastAdminUnderRace(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		accounts := db.Users()
		at := time.Now()
		a := createUser(t, accounts, "A", "a@example.com", "h", at)
		b := createUser(t, accounts, "B", "b@example.com", "h", at)
		for _, u := range []*users.User{&a, &b} {
			u.Role = plaza.RoleAdmin
			if err := accounts.Update(ctx, *u, "", 1); err != nil {
				t.Fatal(err)
			}
			u.Role = plaza.RoleUser
		}
		errs := make(chan error, 2)
		for _, u := range []users.User{a, b} {
			go func() { errs <- accounts.Update(ctx, u, "", 2) }()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("both or neither demotion passed: %v, %v", e1, e2)
		}
		if e := errors.Join(e1, e2); plaza.ErrorCodeOf(e) != plaza.EConflict {
			t.Fatalf("the refused demotion: %v; want conflict", e)
		}
	})
}

func TestListUsersPages(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		accounts := db.Users()
		var ids []string
		for i := range 7 {
			ids = append(ids, createUser(t, accounts, fmt.Sprint("user ", i), fmt.Sprintf("u%d@example.com", i), "h", time.Now()).ID)
		}
		var seen []string
		after := ""
		for {
			page, err := accounts.List(ctx, 3, after)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, u := range page {
				seen = append(seen, u.ID)
			}
			after = page[len(page)-1].ID
		}
		if fmt.Sprint(seen) != fmt.Sprint(ids) {
			t.Fatalf("pages gave %v, want creation order %v", seen, ids)
		}
	})
}

func TestRefreshTokensStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		tokens := db.RefreshTokens()
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		u := createUser(t, db.Users(), "Cy", "cy@example.com", "h", at)
		mk := func(b byte, family string, expires time.Time) users.RefreshToken {
			t.Helper()
			tok := users.RefreshToken{Hash: bytes.Repeat([]byte{b}, 32), Family: family, UserID: u.ID, CreatedAt: at, ExpiresAt: expires}
			if err := tokens.Create(ctx, tok); err != nil {
				t.Fatal(err)
			}
			return tok
		}
		a := mk(1, "fam-1", at.Add(time.Hour))
		b := mk(2, "fam-1", at.Add(time.Hour))
		c := mk(3, "fam-2", at.Add(time.Hour))
		old := mk(4, "fam-3", at.Add(-time.Minute))

		got, err := tokens.ByHash(ctx, a.Hash)
		if err != nil || !bytes.Equal(got.Hash, a.Hash) || got.Family != "fam-1" || got.UserID != u.ID || !got.ExpiresAt.Equal(a.ExpiresAt) || !got.SpentAt.IsZero() {
			t.Fatalf("RefreshTokenByHash = %+v, %v", got, err)
		}

		// Rotation spends the token and stores its successor; a second rotation of the
		// same token conflicts, and one of a token that does not exist is not found.
		next := users.RefreshToken{Hash: bytes.Repeat([]byte{5}, 32), Family: "fam-1", UserID: u.ID, CreatedAt: at.Add(time.Minute), ExpiresAt: at.Add(time.Hour)}
		if err := tokens.Rotate(ctx, a.Hash, next); err != nil {
			t.Fatal(err)
		}
		got, err = tokens.ByHash(ctx, a.Hash)
		if err != nil || !got.SpentAt.Equal(next.CreatedAt) {
			t.Fatalf("rotated token = %+v, %v; want spent at %v", got, err, next.CreatedAt)
		}
		if got, err := tokens.ByHash(ctx, next.Hash); err != nil || got.Family != "fam-1" || !got.SpentAt.IsZero() {
			t.Fatalf("successor = %+v, %v", got, err)
		}
		again := next
		again.Hash = bytes.Repeat([]byte{6}, 32)
		if err := tokens.Rotate(ctx, a.Hash, again); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("second rotation: %v, want conflict", err)
		}
		if _, err := tokens.ByHash(ctx, again.Hash); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("a refused rotation stored its successor: %v", err)
		}
		if err := tokens.Rotate(ctx, bytes.Repeat([]byte{9}, 32), again); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("rotating an unknown token: %v, want not found", err)
		}

		// Of concurrent rotations of one token exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Go(func() {
				succ := users.RefreshToken{Hash: bytes.Repeat([]byte{byte(100 + i)}, 32), Family: "fam-2", UserID: u.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
				err := tokens.Rotate(ctx, c.Hash, succ)
				switch plaza.ErrorCodeOf(err) {
				case "":
					mu.Lock()
					wins++
					mu.Unlock()
				case plaza.EConflict:
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent rotations won, want 1", wins)
		}

		if err := tokens.DeleteFamily(ctx, "fam-1"); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []users.RefreshToken{a, b, next} {
			if _, err := tokens.ByHash(ctx, tok.Hash); plaza.ErrorCodeOf(err) != plaza.ENotFound {
				t.Fatalf("family member survived: %v", err)
			}
		}
		if err := tokens.DeleteExpired(ctx, u.ID, at); err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.ByHash(ctx, old.Hash); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("expired token survived: %v", err)
		}
		if _, err := tokens.ByHash(ctx, c.Hash); err != nil {
			t.Fatalf("live token of another family removed: %v", err)
		}
	})
}
