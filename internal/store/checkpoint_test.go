package store_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// Under writes that never pause, the background checkpoint never finds the WAL fully
// copied; the writer's own checkpoint must still let the WAL start over, or it grows
// without bound (the inserts here append over 100 MiB of pages to it).
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	g := catalog.NewGenerator(1, time.Now())
	const batches, per = 200, 25
	for i := range batches {
		ps := make([]catalog.Product, per)
		for j := range ps {
			ps[j] = g.Next()
			ps[j].Name = fmt.Sprintf("steady %d/%d", i, j)
		}
		if err := db.Products().Insert(t.Context(), ps...); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(db.Location() + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// The writer's mark, 16 MiB, and what was added while a background checkpoint made
	// the writer's own give up (it is tried again at each commit).
	if limit := int64(48 << 20); fi.Size() > limit {
		t.Errorf("the WAL is %d bytes, want at most %d", fi.Size(), limit)
	}
	n, err := db.Products().Count(t.Context())
	if err != nil || n != batches*per {
		t.Fatalf("count = %d, %v; want %d", n, err, batches*per)
	}
}
