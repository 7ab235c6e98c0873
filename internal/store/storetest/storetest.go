// Package storetest runs store tests against every backend, each test on a fresh,
// migrated database.
//
// PostgreSQL runs need PLAZA_TEST_POSTGRES_URL, a URL to a server where the user may
// CREATE DATABASE (scripts/with-services.sh starts one). Without it the PostgreSQL runs are
// skipped, except under CI=true, where they fail: the Postgres run is not optional in CI.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for the admin connection

	"plaza/internal/store"
)

// EnvPostgresURL names the variable holding the admin URL of the test PostgreSQL server.
const EnvPostgresURL = "PLAZA_TEST_POSTGRES_URL"

// Run runs fn as the subtests "sqlite" and "postgres", each with a fresh migrated
// database that is closed (and on PostgreSQL dropped) when the subtest ends. fn may call
// t.Parallel.
func Run(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns one fresh migrated database of the given dialect, closed when t ends.
// For PostgreSQL it skips or fails like Run when no server is configured.
func Open(t testing.TB, dialect store.Dialect) *store.DB {
	t.Helper()
	var cfg store.Config
	switch dialect {
	case store.SQLite:
		cfg.DataDir = t.TempDir()
	case store.Postgres:
		cfg.DatabaseURL = PostgresURL(t)
	default:
		t.Fatalf("storetest: unknown dialect %q", dialect)
	}
	db, err := store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", dialect, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("storetest: close %s: %v", dialect, err)
		}
	})
	if err := db.Migrate(t.Context(), "up", io.Discard); err != nil {
		t.Fatalf("storetest: migrate %s: %v", dialect, err)
	}
	return db
}

// PostgresURL creates a database with a random name on the test server and returns its
// URL; the database is dropped, with any connections still open to it, when t ends. For
// tests that start whole app instances. It skips or fails like Run when no server is
// configured.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgresURL)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(EnvPostgresURL + " not set under CI")
		}
		t.Skip(EnvPostgresURL + " not set; skipping PostgreSQL (scripts/with-services.sh starts one)")
	}
	u, err := url.Parse(admin)
	if err != nil {
		// The URL is not printed: it may carry a password.
		t.Fatalf("storetest: %s is not a valid URL", EnvPostgresURL)
	}

	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "plaza_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// adminExec runs one statement on the admin database. CREATE DATABASE copies template1
// and fails with object_in_use (55006) while another session is busy with it, which
// parallel tests do; it is retried for a while.
func adminExec(ctx context.Context, adminURL, stmt string) error {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		_, err = db.ExecContext(ctx, stmt)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "55006" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CutListeners ends, from the server's side (pg_terminate_backend), every connection that
// store.Notifications.Listen opened to the database at dbURL (a URL from PostgresURL), as
// a failing network or server would, and returns how many it ended.
func CutListeners(t testing.TB, dbURL string) int {
	t.Helper()
	var n int
	adminQuery(t, func(db *sql.DB) error {
		return db.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = $1 AND application_name = $2`, databaseName(t, dbURL), store.ListenerName).Scan(&n)
	})
	return n
}

// RefuseConnections makes the database at dbURL refuse new connections (refuse) or accept
// them again. Connections already open stay.
func RefuseConnections(t testing.TB, dbURL string, refuse bool) {
	t.Helper()
	stmt := fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", databaseName(t, dbURL), !refuse)
	adminQuery(t, func(db *sql.DB) error {
		_, err := db.ExecContext(t.Context(), stmt)
		return err
	})
}

func adminQuery(t testing.TB, fn func(db *sql.DB) error) {
	t.Helper()
	db, err := sql.Open("pgx", os.Getenv(EnvPostgresURL))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := fn(db); err != nil {
		t.Fatalf("storetest: %v", err)
	}
}

func databaseName(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	name := strings.TrimPrefix(u.Path, "/")
	if err != nil || !strings.HasPrefix(name, "plaza_test_") {
		t.Fatal("storetest: not a URL from PostgresURL")
	}
	return name
}
