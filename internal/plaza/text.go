package plaza

import (
	"unicode"
	"unicode/utf8"
)

// TextProblem is the one rule for every human-readable field in the domain (user names,
// product names and descriptions, chat messages): it returns what is wrong with s, or ""
// when s is acceptable. Text must be valid UTF-8 and must not hold characters that hide
// or disguise what a reader sees: NUL and other control characters (line breaks and tabs
// only where multiline allows them), bidirectional overrides and isolates (which reorder
// what is displayed, "Trojan Source"), and Unicode noncharacters.
func TextProblem(s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		switch {
		case multiline && (r == '\n' || r == '\t' || r == '\r'):
		case unicode.IsControl(r):
			if multiline {
				return "must not contain control characters other than line breaks and tabs"
			}
			return "must not contain control characters or line breaks"
		case isBidiControl(r):
			return "must not contain bidirectional control characters"
		case isNoncharacter(r):
			return "must not contain Unicode noncharacters"
		}
	}
	return ""
}

// isBidiControl reports the explicit directional formatting characters (Unicode UAX #9):
// embeddings, overrides, isolates and their terminators. Marks (LRM, RLM, ALM) are kept:
// they change no order on their own and mixed-direction names need them.
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

func isNoncharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}
