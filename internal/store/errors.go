package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"plaza/internal/plaza"
)

// MapError turns a database error into a *plaza.Error whose Message is safe for clients:
//
//	sql.ErrNoRows                                   → ENotFound
//	unique or primary key violation                 → EConflict
//	connection refused or lost, timeouts, deadlines,
//	cancellation, SQLite busy/locked, PostgreSQL
//	connection and shutdown errors                  → EUnavailable
//	anything else                                   → EInternal
//
// The original error is kept as Err for the logs. nil stays nil and an error that already
// carries a *plaza.Error is returned unchanged.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	if pe := (*plaza.Error)(nil); errors.As(err, &pe) {
		return err
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return plaza.Wrap(plaza.ENotFound, err, "not found")
	case isUniqueViolation(err):
		return plaza.Wrap(plaza.EConflict, err, "conflicts with an existing record")
	case isUnavailable(err):
		return plaza.Wrap(plaza.EUnavailable, err, "the database is unavailable; retry later")
	}
	return plaza.Wrap(plaza.EInternal, err, "internal error")
}

func isUniqueViolation(err error) bool {
	if se := (*sqlite.Error)(nil); errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
		return false
	}
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	return false
}

func isUnavailable(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		// The caller went away; nothing is wrong with us, and EInternal would page someone.
		errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF),
		pgconn.Timeout(err):
		return true
	}
	if ce := (*pgconn.ConnectError)(nil); errors.As(err, &ce) {
		return true
	}
	if ne := net.Error(nil); errors.As(err, &ne) {
		return true
	}
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection_exception
			pe.Code == "53300", // too_many_connections
			pe.Code == "57P01", // admin_shutdown
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03": // cannot_connect_now
			return true
		}
		return false
	}
	if se := (*sqlite.Error)(nil); errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}
