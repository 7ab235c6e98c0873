package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqliteFile is the database file's name inside Config.DataDir.
const sqliteFile = "plaza.db"

// sqlitePragmas run on every new connection (the driver applies _pragma DSN parameters per
// connection, so pooled connections all get them). busy_timeout comes first so the others
// wait for a lock instead of failing. WAL lets readers run while one writer writes;
// synchronous=NORMAL is durable across application crashes in WAL mode and only risks the
// last transactions on power loss.
var sqlitePragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"foreign_keys(ON)",
	"synchronous(NORMAL)",
	"temp_store(MEMORY)", // statement journals and sorts stay off disk (about 20% faster bulk seeding)
}

func openSQLite(ctx context.Context, dataDir string, mmapBytes int64, log *slog.Logger) (*DB, error) {
	if dataDir == "" {
		return nil, errors.New("store: a data directory is required for SQLite (DATABASE_URL is empty)")
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	path := filepath.Join(dataDir, sqliteFile)
	// A memory map saves a read call and a copy each time a page is not in a connection's
	// own cache: about 4% of the CPU of a product read by ID (bench/findings.md). An I/O
	// error on a mapped page cannot be returned as an error: the process dies instead, which
	// is why operators on network filesystems can turn it off.
	switch {
	case mmapBytes == 0:
		mmapBytes = DefaultSQLiteMmapBytes
	case mmapBytes < 0:
		mmapBytes = 0
	}
	mmapBytes = min(mmapBytes, MaxSQLiteMmapBytes)
	mmap := fmt.Sprintf("mmap_size(%d)", mmapBytes)

	// BEGIN IMMEDIATE takes the write lock when the transaction starts, so busy_timeout
	// applies. A deferred transaction that reads and then writes can fail at once with
	// SQLITE_BUSY when another process holds the lock, whatever the timeout.
	// The writer leaves most checkpoints to a connection of its own (checkpoint.go).
	writer, err := sql.Open("sqlite", sqliteDSN(path, url.Values{"_txlock": {"immediate"},
		"_pragma": {fmt.Sprintf("wal_autocheckpoint(%d)", walRestartFrames), mmap}}))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// Connect now: this creates the file and switches it to WAL before readers attach.
	if err := writer.PingContext(ctx); err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}

	// query_only rather than mode=ro: a read-only open cannot create the WAL index when it
	// is missing, while query_only keeps the normal open and refuses writes per connection.
	reader, err := sql.Open("sqlite", sqliteDSN(path, url.Values{"_pragma": {"query_only(1)", mmap}}))
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("store: open sqlite reader: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	reader.SetConnMaxLifetime(0)
	if err := reader.PingContext(ctx); err != nil {
		_ = reader.Close()
		_ = writer.Close()
		return nil, fmt.Errorf("store: open sqlite reader %s: %w", path, err)
	}

	ckpt, err := sql.Open("sqlite", sqliteDSN(path, url.Values{"_pragma": {"wal_autocheckpoint(0)"}}))
	if err != nil {
		_ = reader.Close()
		_ = writer.Close()
		return nil, fmt.Errorf("store: open sqlite checkpointer: %w", err)
	}
	ckpt.SetMaxOpenConns(1)
	ckpt.SetMaxIdleConns(1)
	ckpt.SetConnMaxLifetime(0)
	ckpt.SetConnMaxIdleTime(0)

	log.Info("store opened", "dialect", SQLite, "path", path, "readers", n, "mmap_bytes", mmapBytes)
	where, err := filepath.Abs(path)
	if err != nil {
		where = path
	}
	return &DB{dialect: SQLite, writer: writer, reader: reader, log: log, location: where,
		checkpoints: newCheckpointer(ckpt, log)}, nil
}

// sqliteDSN builds a file: URI for path with the shared pragmas plus extra parameters.
// The path is escaped so that '?', '#' or '%' in a directory name cannot end it early.
func sqliteDSN(path string, extra url.Values) string {
	q := url.Values{"_pragma": append([]string(nil), sqlitePragmas...)}
	for k, vs := range extra {
		q[k] = append(q[k], vs...)
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}
