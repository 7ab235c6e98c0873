package cache

import (
	"fmt"
	"testing"
	"time"
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

// TestRecentFillsRememberAtLeastFillMemory: a fill is remembered for fillMemory whenever
// the generations turn, forgotten once taken, and past the bound nothing more is added.
func TestRecentFillsRememberAtLeastFillMemory(t *testing.T) {
	t.Parallel()
	var r recentFills
	t0 := time.Unix(1000, 0)
	d := DigestOf([]byte("v"))
	if !r.add("early", d, t0) || !r.add("late", d, t0.Add(fillMemory-time.Millisecond)) {
		t.Fatal("add refused below the bound")
	}
	// A turn just after "late": it must survive the next fillMemory.
	if got := r.take("late", t0.Add(2*fillMemory-2*time.Millisecond)); len(got) != 1 || got[0] != d {
		t.Fatal("a fill younger than fillMemory was forgotten")
	}
	if len(r.take("late", t0.Add(2*fillMemory-time.Millisecond))) != 0 {
		t.Fatal("a taken fill is still remembered")
	}
	if len(r.take("early", t0.Add(3*fillMemory))) != 0 {
		t.Fatal("a fill older than twice fillMemory is still remembered")
	}
	for i := range maxRecentFills {
		r.add(fmt.Sprint("k", i), d, t0.Add(3*fillMemory))
	}
	if r.add("one more", d, t0.Add(3*fillMemory)) {
		t.Fatal("past maxRecentFills a fill was still remembered")
	}
	if keys, _ := r.takeAll(); len(keys) != maxRecentFills {
		t.Fatalf("takeAll returned %d keys, want %d", len(keys), maxRecentFills)
	}
}
