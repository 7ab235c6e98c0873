package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notifications between instances apart from Redis: PostgreSQL's LISTEN/NOTIFY. Every
// instance already depends on the database, so a message sent this way reaches every
// instance whenever the database answers, whatever else is down. The caches use it as a
// second invalidation channel beside the Redis bus (cache.Notifications).

// ListenerName is the application_name of the connections Listen opens, so an operator
// (or a test) can find them in pg_stat_activity.
const ListenerName = "plaza listener"

// Listener pacing. PostgreSQL tells a listener whose backend ends (a restart,
// pg_terminate_backend) at once; a connection cut without a word (a network partition)
// is noticed by a ping after listenIdle without a notification, within listenPing.
const (
	listenIdle = 500 * time.Millisecond
	listenPing = 500 * time.Millisecond
)

// Notifications is one PostgreSQL notification channel. Its methods implement
// cache.Notifications.
type Notifications struct {
	db      *DB
	channel string
}

// Notifications returns the notification channel named channel (an identifier; it is
// quoted), or nil on SQLite, where one process owns the data and there is nobody to tell.
func (db *DB) Notifications(channel string) *Notifications {
	if db.dialect != Postgres {
		return nil
	}
	return &Notifications{db: db, channel: channel}
}

// Notify sends payload (less than 8000 bytes) to every listener of the channel, this
// process's included. It runs on its own, outside any transaction, so it is delivered at
// once.
func (n *Notifications) Notify(ctx context.Context, payload string) error {
	_, err := n.db.writer.ExecContext(ctx, `SELECT pg_notify($1, $2)`, n.channel, payload)
	return MapError(err)
}

// Listen opens a connection of its own, LISTENs on the channel, calls listening, then
// calls receive with every payload until ctx ends (nil) or the connection fails (the
// error). While idle it pings the connection, so a silently cut one is noticed within
// about a second. Notifications sent before listening, or after the connection failed,
// are not received: the caller counts anything it held as possibly stale.
func (n *Notifications) Listen(ctx context.Context, listening func(), receive func(payload string)) error {
	cfg := n.db.pgConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("store: connecting to listen on %s: %w", n.channel, unwrapConnect(err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{n.channel}.Sanitize()); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("store: listen on %s: %w", n.channel, err)
	}
	listening()
	for {
		// pgx's default context handling sets a deadline on the socket: a wait that times
		// out leaves the connection usable.
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		msg, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			receive(msg.Payload)
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if wctx.Err() != nil && !conn.IsClosed() {
			pctx, cancel := context.WithTimeout(ctx, listenPing)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
		}
		return fmt.Errorf("store: listening on %s: %w", n.channel, err)
	}
}
