package main

import (
	"context"
	"net/url"
	"os"
	"strings"

	"encoding/json"
	"github.com/jackc/pgx/v5"
	"net/http"
	"testing"
	"time"

	"plaza/internal/redistest"
	"plaza/internal/store/storetest"
)

type health struct {
	Status string
	Checks map[string]struct {
		Status    string
		LatencyMS float64 `json:"latency_ms"`
	}
}

func getHealth(t *testing.T, url string) (int, health) {
	t.Helper()
	res, err := http.Get(url + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var h health
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, h
}

// pollHealth reads /api/health until done says so, for at most 10 s, and returns the last
// answer.
func pollHealth(t *testing.T, url string, done func(int, health) bool) (int, health) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, h := getHealth(t, url)
		if done(code, h) || time.Now().After(deadline) {
			return code, h
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisOutageDegradesAndRecovers: with Redis killed, requests are still answered and
// health says degraded; when Redis returns, Plaza reconnects by itself.
func TestRedisOutageDegradesAndRecovers(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	in := start(t, map[string]string{"REDIS_URL": rs.URL()})
	if code, h := getHealth(t, in.URL); code != 200 || h.Status != "ok" || h.Checks["cache"].Status != "ok" || h.Checks["bus"].Status != "ok" {
		t.Fatalf("before: %d %+v", code, h)
	}
	rs.Kill()
	// Probe results are reused for a second (probes are public), so the outage shows
	// within about that.
	code, h := pollHealth(t, in.URL, func(code int, h health) bool { return h.Status != "ok" })
	if code != 200 || h.Status != "degraded" || h.Checks["cache"].Status != "down" || h.Checks["store"].Status != "ok" {
		t.Fatalf("Redis down: %d %+v", code, h)
	}
	if res, err := http.Get(in.URL + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz with only Redis down: %v %v", res, err)
	}
	rs.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, h = getHealth(t, in.URL)
		if code == 200 && h.Status == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 15s after Redis returned: %d %+v", code, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPostgresDownIsUnreadyQuickly: with the database gone, /readyz answers 503 within the
// probe bound instead of hanging.
func TestPostgresDownIsUnreadyQuickly(t *testing.T) {
	t.Parallel()
	dbURL := storetest.PostgresURL(t)
	in := start(t, map[string]string{"DATABASE_URL": dbURL})
	if code, h := getHealth(t, in.URL); code != 200 || h.Checks["store"].Status != "ok" {
		t.Fatalf("before: %d %+v", code, h)
	}
	// Dropping the database (with FORCE) cuts every connection the instance holds.
	dropDatabase(t, dbURL)
	startAt := time.Now()
	// Probe results are reused for a second, then one probe bounded at 2 s decides.
	code, _ := pollHealth(t, in.URL, func(code int, _ health) bool { return code != 200 })
	if code != 503 {
		t.Fatalf("readyz with the database gone: %d", code)
	}
	if d := time.Since(startAt); d > 6*time.Second { // 1 s reuse + 2 s probe; slack for a loaded machine
		t.Fatalf("readyz took %v to see the database gone", d)
	}
}

// dropDatabase drops the database dbURL names, cutting its connections, through the test
// server's admin URL.
func dropDatabase(t *testing.T, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(t.Context(), os.Getenv(storetest.EnvPostgresURL))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	if _, err := admin.Exec(t.Context(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
}
