package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

// setMeta inserts a row into meta, the simplest table there is, which these tests
// use to see what a transaction, a migration or a placeholder did.
func setMeta(ctx context.Context, q store.Querier, key, value string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO meta (key, value, updated_at) VALUES ($1, $2, $3)`,
		key, value, store.Time(time.Now()))
	return err
}

// metaValue reads a row of meta back: ENotFound when there is none.
func metaValue(ctx context.Context, db *store.DB, key string) (string, error) {
	var value string
	err := db.Read().QueryRowContext(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&value)
	return value, store.MapError(err)
}

// TestMigrateRoundTrip walks every migration down one at a time and back up, checking
// status after each step, so each new migration's down section is exercised too.
func TestMigrateRoundTrip(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		migrate := func(cmd string) string {
			t.Helper()
			var b bytes.Buffer
			if err := db.Migrate(ctx, cmd, &b); err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			return b.String()
		}
		type row struct{ version, name, state string }
		status := func() []row {
			t.Helper()
			var rows []row
			for line := range strings.Lines(migrate("status")) {
				f := strings.Fields(line)
				if len(f) < 3 || f[0] == "VERSION" {
					continue
				}
				rows = append(rows, row{f[0], f[1], f[2]})
			}
			return rows
		}
		wantApplied := func(n int) {
			t.Helper()
			for i, r := range status() {
				if want := map[bool]string{true: "applied", false: "pending"}[i < n]; r.state != want {
					t.Errorf("migration %s %s is %s; want %s", r.version, r.name, r.state, want)
				}
			}
		}

		all := status()
		if len(all) == 0 || all[0] != (row{"00001", "meta", "applied"}) {
			t.Fatalf("status after up = %v; want 00001 meta applied first", all)
		}
		wantApplied(len(all))
		if out := migrate("up"); !strings.Contains(out, "no pending migrations") {
			t.Errorf("second up: %q", out)
		}
		if err := db.Tx(ctx, func(q store.Querier) error { return setMeta(ctx, q, "k", "v") }); err != nil {
			t.Fatal(err)
		}

		for n := len(all) - 1; n >= 0; n-- {
			last := all[n]
			if out := migrate("down"); !strings.Contains(out, last.version+" "+last.name) {
				t.Errorf("down: %q; want %s %s rolled back", out, last.version, last.name)
			}
			wantApplied(n)
		}
		if _, err := metaValue(ctx, db, "k"); err == nil {
			t.Error("meta table still readable with every migration rolled back")
		}
		if out := migrate("down"); !strings.Contains(out, "no applied migrations") {
			t.Errorf("down with nothing applied: %q", out)
		}

		out := migrate("up")
		for _, r := range all {
			if !strings.Contains(out, r.version+" "+r.name) {
				t.Errorf("up did not apply %s %s: %q", r.version, r.name, out)
			}
		}
		wantApplied(len(all))
		if _, err := metaValue(ctx, db, "k"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Errorf("after down/up, Get = %v; want the table recreated empty", err)
		}

		if err := db.Migrate(ctx, "sideways", &bytes.Buffer{}); err == nil {
			t.Error("unknown command accepted")
		}
	})
}

func TestTx(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()

		if err := db.Tx(ctx, func(q store.Querier) error { return setMeta(ctx, q, "committed", "yes") }); err != nil {
			t.Fatal(err)
		}
		if v, err := metaValue(ctx, db, "committed"); err != nil || v != "yes" {
			t.Fatalf("committed value = %q, %v", v, err)
		}

		errBoom := errors.New("boom")
		err := db.Tx(ctx, func(q store.Querier) error {
			if err := setMeta(ctx, q, "rolled-back", "x"); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Tx error = %v; want it to wrap fn's error", err)
		}
		if _, err := metaValue(ctx, db, "rolled-back"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("value written by a failed Tx is visible: %v", err)
		}

		func() {
			defer func() {
				if p := recover(); p != "kaboom" {
					t.Fatalf("recovered %v; want the panic to continue after rollback", p)
				}
			}()
			_ = db.Tx(ctx, func(q store.Querier) error {
				if err := setMeta(ctx, q, "panicked", "x"); err != nil {
					return err
				}
				panic("kaboom")
			})
		}()
		if _, err := metaValue(ctx, db, "panicked"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("value written by a panicking Tx is visible: %v", err)
		}

		// The writer is free again after the panic (SQLite has only one writer connection).
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := db.Tx(tctx, func(q store.Querier) error { return setMeta(tctx, q, "after-panic", "ok") }); err != nil {
			t.Fatalf("write after panic: %v", err)
		}
	})
}

func TestUniqueViolationIsConflict(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		insert := func(q store.Querier) error { return setMeta(ctx, q, "dup", "v") }
		if err := db.Tx(ctx, insert); err != nil {
			t.Fatal(err)
		}
		err := db.Tx(ctx, insert)
		var pe *plaza.Error
		if !errors.As(err, &pe) || pe.Code != plaza.EConflict {
			t.Fatalf("duplicate insert: %v; want conflict", err)
		}
		for _, leak := range []string{"INSERT", "meta", "UNIQUE", "unique", "constraint", "duplicate", "23505", "dup"} {
			if strings.Contains(pe.Message, leak) {
				t.Errorf("client message %q leaks %q", pe.Message, leak)
			}
		}
		if pe.Err == nil {
			t.Error("the driver error is not kept for the logs")
		}
	})
}

// TestPlaceholders checks that $N binds by number on both backends, also out of order and
// repeated, so one SQL text serves both.
func TestPlaceholders(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		var got string
		err := db.Read().QueryRowContext(ctx,
			`SELECT CAST($2 AS TEXT) || '-' || CAST($1 AS TEXT) || '-' || CAST($2 AS TEXT)`, "one", "two").Scan(&got)
		if err != nil || got != "two-one-two" {
			t.Fatalf("select = %q, %v; want two-one-two", got, err)
		}

		err = db.Tx(ctx, func(q store.Querier) error {
			_, err := q.ExecContext(ctx, `INSERT INTO meta (updated_at, value, key) VALUES ($3, $2, $1)`,
				"the-key", "the-value", store.Time(time.Now()))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := metaValue(ctx, db, "the-key"); err != nil || v != "the-value" {
			t.Fatalf("Get = %q, %v; want the-value", v, err)
		}
	})
}

func TestTimeRoundTrip(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := t.Context()
		paris := time.FixedZone("CEST", 2*60*60)
		base := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
		// Listed in time order; as plain RFC 3339Nano text "…:00.5Z" sorts after "…:00.45Z"
		// and "…:00Z" after both, which fixed-width fractions avoid.
		times := []time.Time{
			base.Add(-time.Hour).In(paris),
			base,
			base.Add(450 * time.Millisecond),
			base.Add(500 * time.Millisecond),
			base.Add(500*time.Millisecond + 123456789), // nanoseconds beyond microseconds
			base.AddDate(1, 0, 0),
		}
		err := db.Tx(ctx, func(q store.Querier) error {
			for i, tm := range times {
				_, err := q.ExecContext(ctx, `INSERT INTO meta (key, value, updated_at) VALUES ($1, '', $2)`,
					fmt.Sprint(i), store.Time(tm))
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		rows, err := db.Read().QueryContext(ctx, `SELECT key, updated_at FROM meta ORDER BY updated_at`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		i := 0
		for rows.Next() {
			var key string
			var got time.Time
			if err := rows.Scan(&key, store.ScanTime(&got)); err != nil {
				t.Fatal(err)
			}
			want := times[i].Truncate(time.Microsecond)
			if key != fmt.Sprint(i) || !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("row %d: key %s, time %v; want key %d, time %v in UTC", i, key, got, i, want)
			}
			i++
		}
		if err := rows.Err(); err != nil || i != len(times) {
			t.Fatalf("read %d rows, %v; want %d", i, err, len(times))
		}

		var n int
		err = db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM meta WHERE updated_at > $1`,
			store.Time(base.Add(450*time.Millisecond))).Scan(&n)
		if err != nil || n != 3 {
			t.Errorf("range comparison counted %d, %v; want 3", n, err)
		}

		if store.Time(time.Time{}) != nil {
			t.Error("zero time is not NULL")
		}
		got := time.Now()
		if err := db.Read().QueryRowContext(ctx, `SELECT updated_at FROM meta WHERE key = 'none'`).Scan(store.ScanTime(&got)); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("scan missing row: %v", err)
		}
		if err := store.ScanTime(&got).Scan(nil); err != nil || !got.IsZero() {
			t.Errorf("NULL scans to %v, %v; want the zero time", got, err)
		}
	})
}

func TestPingHealthy(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		if err := db.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if code := plaza.ErrorCodeOf(db.Ping(context.Background())); code != plaza.EUnavailable {
			t.Fatalf("Ping after Close: code %q; want unavailable", code)
		}
	})
}

// TestConcurrentWritersSQLite runs read-then-write transactions from 20 goroutines over two
// DBs on the same file (as two processes would): the single writer connection queues
// writers within a DB, and BEGIN IMMEDIATE with busy_timeout makes the other DB wait
// instead of failing with SQLITE_BUSY.
func TestConcurrentWritersSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	var dbs [2]*store.DB
	for i := range dbs {
		db, err := store.Open(ctx, store.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if err := db.Migrate(ctx, "up", &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		dbs[i] = db
	}

	const writers, perWriter = 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			db := dbs[w%2]
			for range perWriter {
				errs <- db.Tx(ctx, func(q store.Querier) error {
					var n int
					if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM meta`).Scan(&n); err != nil {
						return err
					}
					return setMeta(ctx, q, fmt.Sprintf("k%d", n), "v")
				})
			}
		})
		// Readers alongside the writers must not be blocked or break them.
		wg.Go(func() {
			for range perWriter {
				var n int
				if err := dbs[w%2].Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM meta`).Scan(&n); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var n int
	if err := dbs[0].Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM meta`).Scan(&n); err != nil || n != writers*perWriter {
		t.Fatalf("rows = %d, %v; want %d (each transaction saw the previous one)", n, err, writers*perWriter)
	}
}

func TestSQLiteReadIsReadOnly(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	_, err := db.Read().ExecContext(t.Context(), `INSERT INTO meta (key, value, updated_at) VALUES ('k', 'v', '')`)
	if err == nil {
		t.Fatal("write through Read succeeded")
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	t.Parallel()

	// A port nothing listens on: refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	// A server that accepts and never answers: only the connect timeout stops the wait.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	t.Cleanup(func() {
		silent.Close()
		held.Wait()
	})
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})

	for _, tc := range []struct{ name, url string }{
		{"refused", "postgres://plaza:pw@" + refused + "/plaza?sslmode=disable&connect_timeout=1"},
		{"silent", "postgres://plaza:pw@" + silent.Addr().String() + "/plaza?sslmode=disable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Open connects at once, so start-up reports the server before writing
			// anything; without a deadline of its own it gives up after the connect
			// timeout (connect_timeout, else 5s) rather than hanging.
			start := time.Now()
			db, err := store.Open(context.Background(), store.Config{DatabaseURL: tc.url})
			elapsed := time.Since(start)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded on a server that is down")
			}
			if code := plaza.ErrorCodeOf(err); code != plaza.EUnavailable {
				t.Errorf("Open: code %q (%v); want unavailable", code, err)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("Open's error repeats the URL: %v", err)
			}
			if elapsed > 10*time.Second {
				t.Errorf("Open took %v; want the connect timeout to end it", elapsed)
			}
		})
	}
}

func TestOpenMalformedDatabaseURL(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3tpw"
	for _, raw := range []string{
		"postgres://plaza:" + secret + "@localhost:notaport/plaza",
		"postgres://plaza:" + secret + "@localhost/plaza?sslmode=sideways",
		"postgresql://plaza:" + secret + "@localhost/plaza?connect_timeout=soon",
		"postgres://plaza:" + secret + "/x@localhost/plaza", // '/' in the password
		"postgres://plaza@localhost/plaza?password=" + secret + "&sslmode=sideways",
		"mysql://plaza:" + secret + "@localhost/plaza",
	} {
		_, err := store.Open(t.Context(), store.Config{DatabaseURL: raw})
		if err == nil {
			t.Errorf("Open(%q) succeeded", raw)
			continue
		}
		msg := err.Error()
		t.Log(msg)
		if !strings.Contains(msg, "DATABASE_URL") || !strings.Contains(msg, "postgres://") {
			t.Errorf("error for %q does not name DATABASE_URL and the expected form: %s", raw, msg)
		}
		if strings.Contains(msg, secret) || strings.Contains(msg, "3cr3") {
			t.Errorf("error for %q leaks the password: %s", raw, msg)
		}
	}
}

func TestMapError(t *testing.T) {
	t.Parallel()
	existing := plaza.Errorf(plaza.EForbidden, "no")
	cause := errors.New("driver said: SELECT * FROM secrets")
	for _, tc := range []struct {
		err  error
		want plaza.ErrorCode
	}{
		{nil, ""},
		{sql.ErrNoRows, plaza.ENotFound},
		{fmt.Errorf("get user: %w", sql.ErrNoRows), plaza.ENotFound},
		{fmt.Errorf("wrapped: %w", existing), plaza.EForbidden},
		{context.DeadlineExceeded, plaza.EUnavailable},
		{sql.ErrConnDone, plaza.EUnavailable},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, plaza.EUnavailable},
		{cause, plaza.EInternal},
	} {
		got := store.MapError(tc.err)
		if code := plaza.ErrorCodeOf(got); code != tc.want {
			t.Errorf("MapError(%v) code = %q; want %q", tc.err, code, tc.want)
		}
		if tc.err == nil {
			continue
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("MapError(%v) dropped the cause", tc.err)
		}
		var pe *plaza.Error
		if errors.As(got, &pe) && strings.Contains(pe.Message, "SELECT") {
			t.Errorf("MapError(%v) message leaks SQL: %q", tc.err, pe.Message)
		}
	}
}

// TestSQLiteMemoryMap checks the memory map each kind of connection gets, and that reads
// are right where a file larger than the map is read partly through it and partly with
// read calls.
func TestSQLiteMemoryMap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set, want int64
	}{
		{0, store.DefaultSQLiteMmapBytes},
		{-1, 0},
		{64 << 10, 64 << 10},
		{3 << 30, store.MaxSQLiteMmapBytes},
	} {
		t.Run(fmt.Sprint(tc.set), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dir := t.TempDir()
			db, err := store.Open(ctx, store.Config{DataDir: dir, SQLiteMmapBytes: tc.set})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(ctx, "up", io.Discard); err != nil {
				t.Fatal(err)
			}
			var got int64
			if err := db.Read().QueryRowContext(ctx, `PRAGMA mmap_size`).Scan(&got); err != nil || got != tc.want {
				t.Errorf("reader's mmap_size = %d, %v; want %d", got, err, tc.want)
			}
			err = db.Tx(ctx, func(q store.Querier) error {
				rows, err := q.QueryContext(ctx, `PRAGMA mmap_size`)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					if err := rows.Scan(&got); err != nil {
						return err
					}
				}
				return rows.Err()
			})
			if err != nil || got != tc.want {
				t.Errorf("writer's mmap_size = %d, %v; want %d", got, err, tc.want)
			}

			// About 600 KiB of rows, moved from the WAL into the file, then read back.
			const rows = 2000
			value := strings.Repeat("v", 300)
			err = db.Tx(ctx, func(q store.Querier) error {
				for i := range rows {
					if err := setMeta(ctx, q, fmt.Sprintf("k%05d", i), fmt.Sprintf("%s%05d", value, i)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Read().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(filepath.Join(dir, "plaza.db")); err != nil || fi.Size() < 512<<10 {
				t.Fatalf("database file after the checkpoint: %v, %v; want at least 512 KiB", fi, err)
			}
			for i := range rows {
				v, err := metaValue(ctx, db, fmt.Sprintf("k%05d", i))
				if want := fmt.Sprintf("%s%05d", value, i); err != nil || v != want {
					t.Fatalf("row %d = %.20q…, %v; want %.20q…", i, v, err, want)
				}
			}
		})
	}
}
