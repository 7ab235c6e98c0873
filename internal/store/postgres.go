package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"plaza/internal/plaza"
)

// Pool sizing for PostgreSQL. Every instance holds up to maxOpen connections, so N
// instances need N×maxOpen below the server's max_connections.
const (
	pgMaxOpen     = 20
	pgMaxIdle     = pgMaxOpen // fewer idle than open makes the pool close and reopen connections under load, and PostgreSQL forks a backend for each
	pgMaxLifetime = 30 * time.Minute
	pgMaxIdleTime = 5 * time.Minute

	pgConnectTimeout = 5 * time.Second // when DATABASE_URL sets no connect_timeout
)

const databaseURLHint = "expected postgres://user:password@host:5432/dbname?sslmode=disable (or postgresql://…)"

func openPostgres(ctx context.Context, databaseURL string, log *slog.Logger) (*DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, databaseURLError(databaseURL, err)
	}
	if cfg.ConnectTimeout == 0 {
		// Without connect_timeout a server that accepts and never answers would hold a
		// request until its own deadline, or forever when it has none.
		cfg.ConnectTimeout = pgConnectTimeout
	}
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(pgMaxOpen)
	pool.SetMaxIdleConns(pgMaxIdle)
	pool.SetConnMaxLifetime(pgMaxLifetime)
	pool.SetConnMaxIdleTime(pgMaxIdleTime)

	// Connect now: an unreachable server is a start-up failure to report before anything
	// else happens, not a first request's.
	pctx, cancel := context.WithTimeout(ctx, pgConnectTimeout)
	defer cancel()
	if err := pool.PingContext(pctx); err != nil {
		pool.Close()
		return nil, plaza.Wrap(plaza.EUnavailable, unwrapConnect(err), fmt.Sprintf("PostgreSQL at %s:%d does not answer", cfg.Host, cfg.Port))
	}
	log.Info("store opened", "dialect", Postgres, "host", cfg.Host, "port", cfg.Port, "database", cfg.Database)
	where := fmt.Sprintf("postgres://%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	return &DB{dialect: Postgres, writer: pool, reader: pool, log: log, location: where, pgConfig: cfg}, nil
}

// databaseURLError explains a DATABASE_URL that does not parse without repeating it: the
// URL, and parser messages that quote parts of it, may carry the password. A URL that does
// not parse at all gets a fixed reason (with a password containing '/', say, the parser
// cannot tell which part is secret); otherwise pgx's reason is kept with every password
// the URL carries masked out of it.
func databaseURLError(databaseURL string, cause error) error {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return errors.New("store: invalid DATABASE_URL: it is not a valid URL (percent-encode special " +
			"characters in the user name and password); " + databaseURLHint)
	}
	reason := cause.Error()
	// pgx prefixes its reason with the URL in backquotes, password redacted on a
	// best-effort basis; drop that part.
	if i := strings.LastIndex(reason, "`: "); i >= 0 {
		reason = reason[i+3:]
	}
	var secrets []string
	if pw, ok := u.User.Password(); ok {
		secrets = append(secrets, pw, rawPassword(databaseURL))
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k, err := url.QueryUnescape(k); err == nil && (strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword")) {
			secrets = append(secrets, v)
			if dec, err := url.QueryUnescape(v); err == nil {
				secrets = append(secrets, dec)
			}
		}
	}
	for _, s := range secrets {
		if s != "" {
			reason = strings.ReplaceAll(reason, s, "xxxxx")
		}
	}
	return errors.New("store: invalid DATABASE_URL (" + reason + "); " + databaseURLHint)
}

// rawPassword returns the password as spelled in a URL that url.Parse accepts (which may
// differ from the decoded one by percent-encoding).
func rawPassword(databaseURL string) string {
	_, rest, _ := strings.Cut(databaseURL, "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	userinfo, _, ok := cutLast(rest, "@")
	if !ok {
		return ""
	}
	_, pw, _ := strings.Cut(userinfo, ":")
	return pw
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// unwrapConnect returns the innermost cause of a failed connection (the refused dial, the
// failed authentication): pgx's outer message quotes connection settings.
func unwrapConnect(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
