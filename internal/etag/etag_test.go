package etag_test

import (
	"testing"

	"plaza/internal/etag"
)

func TestExpect(t *testing.T) {
	t.Parallel()
	const id = "p1"
	v3 := etag.Make(id, 3)
	cases := []struct {
		name      string
		tags      []string
		set       bool
		allows    []int64
		disallows []int64
	}{
		{"no precondition", nil, false, []int64{1, 3, 99}, nil},
		{"star matches any current version", []string{"*"}, false, []int64{1, 3}, nil},
		{"own strong tag", []string{v3}, true, []int64{3}, []int64{2, 4}},
		{"any of several", []string{`"other-v3"`, etag.Make(id, 5), v3}, true, []int64{3, 5}, []int64{4}},
		{"weak tag never matches", []string{"W/" + v3}, true, nil, []int64{3}},
		{"another resource's tag", []string{`"p2-v3"`}, true, nil, []int64{3}},
		{"prefix of another id", []string{`"p1x-v3"`}, true, nil, []int64{3}},
		{"garbage", []string{`"p1-v"`, `"p1-v-1"`, `"p1-v+3"`, `p1-v3`, `"p1-v0"`, `"p1-v99999999999999999999"`}, true, nil, []int64{0, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := etag.Expect(id, c.tags...)
			if e.IsSet() != c.set {
				t.Fatalf("IsSet = %v, want %v", e.IsSet(), c.set)
			}
			for _, v := range c.allows {
				if !e.Allows(v) {
					t.Errorf("version %d refused", v)
				}
			}
			for _, v := range c.disallows {
				if e.Allows(v) {
					t.Errorf("version %d allowed", v)
				}
			}
		})
	}
}

func TestMakeRoundTrips(t *testing.T) {
	t.Parallel()
	if got := etag.Make("abc", 12); got != `"abc-v12"` {
		t.Fatalf("Make = %s", got)
	}
	if !etag.Expect("abc", etag.Make("abc", 12)).Allows(12) {
		t.Fatal("a tag made by Make does not match its own version")
	}
}
