package store

import (
	"database/sql"
	"fmt"
	"time"
)

// How times round-trip:
//
//   - PostgreSQL columns are timestamptz, which keeps microseconds and returns the instant
//     in the session's zone.
//   - SQLite has no time type. Columns are TEXT holding RFC 3339 in UTC with fixed-width
//     fractional seconds, 2006-01-02T15:04:05.000000000Z, so text order is time order and
//     ORDER BY / range comparisons work on the column as is. Declare them TEXT, not
//     DATETIME: for DATE/DATETIME/TIMESTAMP the driver rewrites values in its own format.
//
// Time truncates to microseconds, PostgreSQL's precision, so a value read back is Equal to
// the one written on both backends and keyset cursors built from it agree with the rows.
// ScanTime returns UTC. Passing a time.Time directly works on PostgreSQL only; always use
// these two.

// timeLayout is RFC 3339 with nine fraction digits always present.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Time converts t into a query argument for a time column (timestamptz on PostgreSQL,
// TEXT on SQLite). The zero time becomes NULL.
func Time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond).Format(timeLayout)
}

// ScanTime returns a Scan destination that stores a time column into dst, in UTC. NULL
// stores the zero time.
//
//	err := row.Scan(&u.ID, store.ScanTime(&u.CreatedAt))
func ScanTime(dst *time.Time) sql.Scanner { return timeScanner{dst} }

type timeScanner struct{ dst *time.Time }

func (s timeScanner) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.dst = time.Time{}
	case time.Time:
		*s.dst = v.UTC()
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

func (s timeScanner) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("store: scan time: %w", err)
	}
	*s.dst = t.UTC()
	return nil
}
