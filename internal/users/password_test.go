package users

import (
	"context"
	"strings"
	"testing"

	"plaza/internal/plaza"
)

var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashIsPHCAndVerifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, err := newHasher(DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(enc, "$") != 5 {
		t.Fatalf("hash %q is not a PHC argon2id string with OWASP parameters", enc)
	}
	again, _ := h.hash(ctx, "correct horse battery staple")
	if again == enc {
		t.Fatal("two hashes of one password are equal: no random salt")
	}
	for pw, want := range map[string]bool{"correct horse battery staple": true, "correct horse battery stapl": false, "": false} {
		if ok, err := h.verify(ctx, pw, enc); err != nil || ok != want {
			t.Errorf("verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	// A hash made with other parameters verifies with its own, not the current ones.
	c, _ := newHasher(cheap)
	old, _ := c.hash(ctx, "s3cret passphrase")
	if ok, err := h.verify(ctx, "s3cret passphrase", old); err != nil || !ok {
		t.Fatalf("hash with older parameters: %v %v", ok, err)
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=64,t=0,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5"} {
		if _, err := h.verify(ctx, "x", bad); err == nil {
			t.Errorf("verify accepted malformed hash %q", bad)
		}
	}
}

func TestHashWaitsForASlotOrTheContext(t *testing.T) {
	t.Parallel()
	h, _ := newHasher(cheap)
	for range cap(h.slots) {
		h.slots <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.hash(ctx, "whatever password"); plaza.ErrorCodeOf(err) != plaza.EUnavailable {
		t.Fatalf("hash with every slot taken and ctx done: %v", err)
	}
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pw   string
		ok   bool
		want string
	}{
		{"correct horse battery staple", true, ""},
		{"Tr0ub4dor&3x", true, ""},
		{"short1!", false, "at least 8"},
		{strings.Repeat("é", 8) + "Zq8#", true, ""},
		{strings.Repeat("Zq8#mL2v", 16), true, ""},
		{strings.Repeat("Zq8#mL2v", 16) + "x", false, "at most 128"},
		{"password", false, "too common"},
		{"password1", false, "too common"},
		{"12345678", false, "too common"},
		{"qwertyuiop", false, "too common"},
		{"iloveyou", false, "too common"},
		{"aaaaaaaaaaaa", false, "too common"},
		{"Password123!", false, "too common"},
		// The user's own name or email is as guessable as a common password.
		{"annabelle.jones@example.com", false, "too common"},
	}
	for _, c := range cases {
		var p plaza.Problems
		validatePassword(&p, c.pw, "Annabelle Jones", "annabelle.jones@example.com")
		if c.ok != (len(p) == 0) || (!c.ok && !strings.Contains(p[0].Message, c.want)) || (!c.ok && p[0].Field != "password") {
			t.Errorf("validatePassword(%q) = %v; want ok=%v %q", c.pw, p, c.ok, c.want)
		}
	}
}

func TestValidateUser(t *testing.T) {
	t.Parallel()
	ok := User{Name: "Ann", Email: "ann@example.com", Role: plaza.RoleUser}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		u     User
		field string
	}{
		"empty name":      {User{Name: "  ", Email: "a@example.com", Role: plaza.RoleUser}, "name"},
		"long name":       {User{Name: strings.Repeat("n", 101), Email: "a@example.com", Role: plaza.RoleUser}, "name"},
		"control in name": {User{Name: "An\x00n", Email: "a@example.com", Role: plaza.RoleUser}, "name"},
		"no at":           {User{Name: "Ann", Email: "ann.example.com", Role: plaza.RoleUser}, "email"},
		"display name":    {User{Name: "Ann", Email: "Ann <ann@example.com>", Role: plaza.RoleUser}, "email"},
		"two addresses":   {User{Name: "Ann", Email: "a@example.com,b@example.com", Role: plaza.RoleUser}, "email"},
		"empty email":     {User{Name: "Ann", Role: plaza.RoleUser}, "email"},
		"long email":      {User{Name: "Ann", Email: strings.Repeat("a", 250) + "@example.com", Role: plaza.RoleUser}, "email"},
		"unknown role":    {User{Name: "Ann", Email: "a@example.com", Role: "root"}, "role"},
		"empty role":      {User{Name: "Ann", Email: "a@example.com"}, "role"},
	}
	for name, c := range cases {
		err := c.u.Validate()
		if pe := plaza.AsError(err); err == nil || pe.Code != plaza.EInvalid || len(pe.Fields) != 1 || pe.Fields[0].Field != c.field {
			t.Errorf("%s: %v, want one invalid %s", name, err, c.field)
		}
	}
	// 100 characters is the limit, counted in characters, not bytes.
	if err := (User{Name: strings.Repeat("ü", 100), Email: "a@example.com", Role: plaza.RoleUser}).Validate(); err != nil {
		t.Fatalf("100 two-byte characters: %v", err)
	}
	if EmailKey(" Ann@Example.COM ") != "ann@example.com" {
		t.Fatal("EmailKey does not fold case and trim")
	}
}
