package catalog_test

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// BenchmarkSearchUnderHostileLoad is the security issue's goal on 20,000 products: the
// costliest search a client may send (the eight most common words, each at most once)
// measured alone, and a page of normal category reads measured while eight such searches
// run without pause. It reports the hostile searches' worst time (the query timeout caps
// it) and the normal reads' p50 and p99.
//
//	go test -run '^$' -bench SearchUnderHostileLoad -benchtime 2000x ./internal/catalog/
func BenchmarkSearchUnderHostileLoad(b *testing.B) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(dialect), func(b *testing.B) { searchUnderHostileLoad(b, storetest.Open(b, dialect)) })
	}
}

func searchUnderHostileLoad(b *testing.B, db *store.DB) {
	{
		ctx := context.Background()
		svc, err := catalog.New(catalog.Options{Store: db.Products()})
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Seed(ctx, 20_000, nil); err != nil {
			b.Fatal(err)
		}
		hostile := commonWords(8)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var worst time.Duration
		var searches, timeouts int
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					_, err := svc.List(ctx, catalog.Filter{Q: hostile})
					d := time.Since(start)
					mu.Lock()
					searches++
					worst = max(worst, d)
					switch plaza.ErrorCodeOf(err) {
					case "":
					case plaza.EUnavailable:
						timeouts++
					default:
						panic(err)
					}
					mu.Unlock()
				}
			})
		}
		var reads []time.Duration
		failed := 0
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			if _, err := svc.List(ctx, catalog.Filter{Category: "electronics", Sort: catalog.SortPrice, Limit: 20}); err != nil {
				failed++
			}
			reads = append(reads, time.Since(start))
		}
		b.StopTimer()
		close(stop)
		wg.Wait()
		slices.Sort(reads)
		b.ReportMetric(float64(reads[len(reads)/2].Microseconds())/1000, "read-p50-ms")
		b.ReportMetric(float64(reads[len(reads)*99/100].Microseconds())/1000, "read-p99-ms")
		b.ReportMetric(float64(worst.Microseconds())/1000, "hostile-max-ms")
		b.ReportMetric(float64(searches), "hostile-searches")
		b.ReportMetric(float64(timeouts), "hostile-503s")
		b.ReportMetric(float64(failed), "read-503s")
	}
}

// commonWords is the n words that occur in the most generated products.
func commonWords(n int) string {
	g := catalog.NewGenerator(1, time.Now())
	counts := map[string]int{}
	for range 2000 {
		p := g.Next()
		seen := map[string]bool{}
		for _, w := range strings.Fields(strings.ToLower(p.Name + " " + p.Description)) {
			w = strings.Trim(w, ".,")
			if len(w) > 2 && !seen[w] {
				seen[w] = true
				counts[w]++
			}
		}
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool { return counts[words[i]] > counts[words[j]] })
	return strings.Join(words[:n], " ")
}
