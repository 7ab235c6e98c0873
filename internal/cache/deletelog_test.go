package cache

import (
	"fmt"
	"testing"
)

// TestDeleteLogAnswersPerKey: a fill learns whether its own key was deleted since it read
// the log's number, not whether anything was; a forget-all counts for every key; and
// once the ring no longer reaches back to that number the answer is "maybe", so yes.
func TestDeleteLogAnswersPerKey(t *testing.T) {
	t.Parallel()
	var l deleteLog
	start := l.seq
	l.add([]string{"categories", "p:2"}, false)
	if l.since(start, "p:1") {
		t.Fatal("p:1 was not deleted, yet a fill of it would be dropped")
	}
	if !l.since(start, "p:2") || !l.since(start, "categories") {
		t.Fatal("a deleted key's fill would be kept")
	}
	mid := l.seq
	if l.since(mid, "p:2") {
		t.Fatal("p:2 was deleted before mid, not after")
	}
	l.add(nil, true)
	if !l.since(mid, "p:1") {
		t.Fatal("after a forget-all every key counts as deleted")
	}
	late := l.seq
	for i := range len(l.ring) + 1 {
		l.add([]string{fmt.Sprint("other:", i)}, false)
	}
	if !l.since(late, "p:1") {
		t.Fatal("past the ring's reach the log must answer yes")
	}
	if l.since(l.seq-1, "p:1") {
		t.Fatal("within reach, an unrelated key is not p:1")
	}
}
