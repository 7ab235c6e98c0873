// Package store is the SQL store the services use: SQLite (embedded, the default) or
// PostgreSQL (when DATABASE_URL is set), behind one implementation over database/sql.
//
// Queries are written once for both dialects:
//   - placeholders are $1, $2, … (modernc.org/sqlite binds $N by number, like PostgreSQL);
//     queries built in parts number theirs with params.add; the one exception is a bulk
//     INSERT on SQLite, which binds ? by position (see insertRows);
//   - times are written with [Time] and read with [ScanTime] (see time.go);
//   - upserts use INSERT … ON CONFLICT (…) DO UPDATE SET x = excluded.x.
//
// Writes go through [DB.Tx], reads through [DB.Read]. Errors leave the store as *plaza.Error
// via [MapError], so driver messages and SQL text never reach a client.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"plaza/internal/plaza"
)

// Dialect names the SQL backend behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config says which database to open.
type Config struct {
	// DatabaseURL selects the backend: "" opens SQLite in DataDir; a postgres:// or
	// postgresql:// URL opens PostgreSQL.
	DatabaseURL string
	// DataDir holds the SQLite file, DataDir/plaza.db. It is created (0o750) when missing.
	DataDir string
	// Logger receives a line when the store opens and closes, and failed rollbacks;
	// nil discards.
	Logger *slog.Logger
	// SQLiteMmapBytes is how much of the SQLite file connections read through a memory map
	// instead of read calls: 0 means DefaultSQLiteMmapBytes, a negative value turns the map
	// off. SQLite caps it at MaxSQLiteMmapBytes.
	SQLiteMmapBytes int64
}

const (
	// DefaultSQLiteMmapBytes maps the first GiB of the file: the whole of a catalog of a
	// few hundred thousand products.
	DefaultSQLiteMmapBytes = 1 << 30
	// MaxSQLiteMmapBytes is SQLite's own ceiling (SQLITE_MAX_MMAP_SIZE on Linux).
	MaxSQLiteMmapBytes = 0x7fff0000
)

// Querier runs SQL. *sql.DB and *sql.Tx satisfy it, so a store method can take a Querier
// and run either alone or inside a caller's transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	dialect Dialect
	// writer runs every transaction. On SQLite it holds exactly one connection, so writers
	// queue in Go instead of failing with SQLITE_BUSY.
	writer *sql.DB
	// reader serves Read. On SQLite it is a separate read-only pool (WAL lets readers run
	// alongside the writer); on PostgreSQL it is the same pool as writer.
	reader *sql.DB
	log    *slog.Logger
	closed atomic.Bool
	// stmts holds read statements prepared once per query text (string → *sql.Stmt): the
	// point lookups on the hot path. modernc's SQLite otherwise parses the SQL on every call,
	// which was a fifth of the CPU of an uncached product read.
	stmts sync.Map
	// location says where the data lives, for people: the SQLite file's absolute path, or
	// the PostgreSQL server and database (never a password).
	location string
	// pgConfig is how to open a connection of one's own (Notifications.Listen); nil on
	// SQLite.
	pgConfig *pgx.ConnConfig
	// wake tells this process's outbox relay that events were committed.
	wake     chan struct{}
	wakeOnce sync.Once
	// rankedMatches is the window a relevance page ranks; 0 is catalog.RankedMatches.
	// Tests lower it (export_test.go).
	rankedMatches int
	// commits queues the writes that go through group commit (commit.go).
	commits committer
	// writeStmts are SQLite's prepared write statements (writeStatements), set once by
	// the committer.
	writeStmts map[string]*sql.Stmt
	// checkpoints runs SQLite's WAL checkpoints (checkpoint.go); nil on PostgreSQL.
	checkpoints *checkpointer
}

// pingTimeout bounds Ping so a readiness probe answers even when the database hangs.
const pingTimeout = 2 * time.Second

// Open opens the database cfg names. It does not migrate; call Migrate for that.
// Both are opened and checked at once: a PostgreSQL server that does not answer fails
// Open, so start-up reports it before writing anything; once open, an outage shows in Ping
// (readiness).
func Open(ctx context.Context, cfg Config) (*DB, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.DatabaseURL == "":
		return openSQLite(ctx, cfg.DataDir, cfg.SQLiteMmapBytes, log)
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		return openPostgres(ctx, cfg.DatabaseURL, log)
	default:
		// The URL is not echoed: it may carry a password.
		return nil, errors.New("store: DATABASE_URL must be empty (SQLite in the data directory) " +
			"or a PostgreSQL URL starting with postgres:// or postgresql://")
	}
}

// Location says where the data lives: the SQLite file's absolute path, or
// postgres://host:port/database.
func (db *DB) Location() string { return db.location }

// Dialect reports which backend db talks to.
func (db *DB) Dialect() Dialect { return db.dialect }

// Read returns the pool for queries outside a transaction. On SQLite it is read-only.
func (db *DB) Read() Querier { return db.reader }

// readRow runs a single-row read through a statement prepared once per query text (and,
// by database/sql, once per pooled connection). If preparing fails it runs the query
// unprepared, so the query's own error is what the caller sees.
//
// On SQLite a context that has not ended is not passed on to the driver: for a context
// that can end (every request's), modernc's driver and database/sql each start a
// goroutine per query to watch it. In BenchmarkProductJSON/uncached_sqlite that is a
// quarter of a read's CPU with one P (36 → 27 µs) and nearly half with an idle second P to
// wake (54 → 30 µs); on a busy server, where no P is idle, it is closer to the first.
// Watching gains nothing here: a read by key is a few page lookups, over in microseconds
// (the driver's own check for an ended context runs every 1,000 VM steps, which such a
// read never reaches), and a reader in WAL mode does not wait for the writer; the one
// wait left, for a lock during WAL recovery, is bounded by busy_timeout. A context that
// has already ended still fails the read before it runs.
func (db *DB) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	if db.dialect == SQLite && ctx.Err() == nil {
		ctx = context.WithoutCancel(ctx)
	}
	if st := db.readStmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.reader.QueryRowContext(ctx, query, args...)
}

// readRows is readRow for a read of many rows.
func (db *DB) readRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := db.readStmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.reader.QueryContext(ctx, query, args...)
}

// readStmt returns query prepared on the readers, once per query text; nil if preparing
// failed.
func (db *DB) readStmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := db.reader.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := db.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		st = prev.(*sql.Stmt)
	}
	return st
}

// Tx runs fn in one write transaction: committed when fn returns nil, rolled back when fn
// returns an error or panics (the panic continues after the rollback). The error returned
// has passed through MapError, so it is a *plaza.Error; fn's own error stays in its chain.
func (db *DB) Tx(ctx context.Context, fn func(q Querier) error) error {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return MapError(fmt.Errorf("store: begin: %w", err))
	}
	done := false
	defer func() {
		// Reached without done on error, panic or runtime.Goexit (t.FailNow in a test):
		// the transaction must not keep SQLite's only writer connection.
		if !done {
			if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
				db.log.Warn("store: rollback failed", "err", err)
			}
		}
	}()
	if err := fn(tx); err != nil {
		return MapError(err)
	}
	done = true
	if err := tx.Commit(); err != nil {
		return MapError(fmt.Errorf("store: commit: %w", err))
	}
	db.committed()
	return nil
}

// Ping checks that the database answers, within 2 seconds even when ctx has no deadline.
// On SQLite it asks the reader pool, so a long write transaction does not fail readiness.
// A failure is an EUnavailable *plaza.Error.
func (db *DB) Ping(ctx context.Context) error {
	if db.closed.Load() {
		return plaza.Errorf(plaza.EUnavailable, "the database is closed")
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := db.reader.PingContext(ctx); err != nil {
		return plaza.Wrap(plaza.EUnavailable, err, "the database is unavailable")
	}
	return nil
}

// Close closes every prepared statement and pool, and returns every error it met, not
// just the last. Calling it again is a no-op.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	db.closeCommits()
	var err error
	if db.checkpoints != nil {
		err = db.checkpoints.close()
	}
	for _, st := range db.writeStmts {
		err = errors.Join(err, st.Close())
	}
	db.stmts.Range(func(_, st any) bool {
		err = errors.Join(err, st.(*sql.Stmt).Close())
		return true
	})
	if db.reader != db.writer {
		err = errors.Join(err, db.reader.Close())
	}
	err = errors.Join(err, db.writer.Close())
	db.log.Info("store closed", "dialect", db.dialect)
	return err
}
