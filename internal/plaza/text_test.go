package plaza_test

import (
	"testing"

	"plaza/internal/plaza"
)

func TestTextProblem(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s         string
		multiline bool
		ok        bool
	}{
		{"Helix Laptop 17\"", false, true},
		{"Zoë Ångström 李小龍 عمر", false, true},
		{"line one\nline two\ttab", true, true},
		{"line one\nline two", false, false},
		{"nul\x00byte", true, false},
		{"bell\x07", true, false},
		{"del\x7f", true, false},
		{"c1\u0085control", true, false},
		{"evil\u202Egnp.exe", false, false},
		{"isolate\u2066x\u2069", true, false},
		{"nonchar\uFFFF", false, false},
		{"nonchar\U0001FFFE", false, false},
		{"nonchar\uFDD0", false, false},
		{"bad\xffutf8", false, false},
		{"rtl mark \u200F ok", false, true},
	} {
		if got := plaza.TextProblem(c.s, c.multiline) == ""; got != c.ok {
			t.Errorf("TextProblem(%q, multiline=%v) ok = %v, want %v", c.s, c.multiline, got, c.ok)
		}
	}
}
