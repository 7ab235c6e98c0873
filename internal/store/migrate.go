package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"plaza/internal/plaza"
)

// Both directories hold the same versions with the same logical schema, each in its
// dialect. A new migration is added to both in the same change.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// Migrate runs a migration command and reports to w:
//
//	up      apply every pending migration
//	down    roll back the most recently applied migration
//	status  list every migration with its version, name and state
//
// On PostgreSQL an advisory lock keeps instances that start together from migrating at
// the same time. On SQLite the single writer connection does the same within a process.
func (db *DB) Migrate(ctx context.Context, command string, w io.Writer) error {
	p, err := db.migrationProvider()
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	switch command {
	case "up":
		results, err := p.Up(ctx)
		for _, r := range results {
			if r.Error == nil {
				fmt.Fprintf(w, "up    %s (%s)\n", migrationLabel(r.Source), r.Duration.Round(time.Millisecond))
			}
		}
		if err != nil {
			return fmt.Errorf("store: migrate up: %w", err)
		}
		if len(results) == 0 {
			fmt.Fprintln(w, "no pending migrations")
		}
	case "down":
		r, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			fmt.Fprintln(w, "no applied migrations to roll back")
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: migrate down: %w", err)
		}
		fmt.Fprintf(w, "down  %s (%s)\n", migrationLabel(r.Source), r.Duration.Round(time.Millisecond))
	case "status":
		statuses, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("store: migrate status: %w", err)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
		for _, s := range statuses {
			applied := "-"
			if s.State == goose.StateApplied {
				applied = s.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", s.Source.Version, migrationName(s.Source.Path), s.State, applied)
		}
		return tw.Flush()
	default:
		return plaza.Errorf(plaza.EBadRequest, "unknown migrate command %q: want up, down or status", command)
	}
	return nil
}

func (db *DB) migrationProvider() (*goose.Provider, error) {
	dir, dialect := "migrations/sqlite", goose.DialectSQLite3
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(db.log),
	}
	if db.dialect == Postgres {
		dir, dialect = "migrations/postgres", goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	fsys, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	// The provider never closes db.writer: we do not call its Close.
	return goose.NewProvider(dialect, db.writer, fsys, opts...)
}

func migrationLabel(s *goose.Source) string {
	return fmt.Sprintf("%05d %s", s.Version, migrationName(s.Path))
}

// migrationName turns "00001_meta.sql" into "meta".
func migrationName(p string) string {
	name := strings.TrimSuffix(path.Base(p), path.Ext(p))
	if _, after, ok := strings.Cut(name, "_"); ok {
		return after
	}
	return name
}
