package cache

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestAnnouncementsShareNotifications: announcements made while one is being sent go
// together as the next notification, each key once, and each returns only after the
// notification carrying its keys was sent; a lone one is sent at once.
func TestAnnouncementsShareNotifications(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sent [][]string
	var numbers []map[string]uint64
	entered, release := make(chan struct{}), make(chan struct{})
	n := noteBatches{send: func(_ context.Context, keys []string, seqs []uint64) error {
		mu.Lock()
		first := len(sent) == 0
		sent = append(sent, slices.Clone(keys))
		m := map[string]uint64{}
		for i, k := range keys {
			m[k] = seqs[i]
		}
		numbers = append(numbers, m)
		mu.Unlock()
		if first {
			close(entered)
			<-release
		}
		return nil
	}}
	detached := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Second)
	}
	ctx := t.Context()
	firstDone := make(chan error, 1)
	go func() { firstDone <- n.announce(ctx, []string{"p:1"}, 1, detached) }()
	<-entered

	var wg sync.WaitGroup
	returned := make(chan int, 10)
	for i := range 10 {
		wg.Go(func() {
			if err := n.announce(ctx, []string{"categories", fmt.Sprint("p:", i%3)}, uint64(i+2), detached); err != nil {
				t.Error(err)
			}
			mu.Lock()
			returned <- len(sent)
			mu.Unlock()
		})
	}
	for {
		n.mu.Lock()
		waiting := n.next != nil && n.next.callers == 10
		n.mu.Unlock()
		if waiting {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(returned)
	for seen := range returned {
		if seen < 2 {
			t.Fatal("an announcement returned before its notification was sent")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 2 {
		t.Fatalf("%d notifications for 11 announcements, want the first and one shared: %v", len(sent), sent)
	}
	got := slices.Sorted(slices.Values(sent[1]))
	if want := []string{"categories", "p:0", "p:1", "p:2"}; !slices.Equal(got, want) {
		t.Fatalf("the shared notification carried %v, want %v", got, want)
	}
	// Each key carries the largest number of the deletions that named it (announcement
	// i is numbered i+2 and names p:i%3).
	if want := map[string]uint64{"categories": 11, "p:0": 11, "p:1": 9, "p:2": 10}; !maps.Equal(numbers[1], want) {
		t.Fatalf("the shared notification numbered its keys %v, want %v", numbers[1], want)
	}
}
