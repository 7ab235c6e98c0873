package store

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// Checkpoints on SQLite. A checkpoint copies the pages committed to the WAL back into the
// database file (reading them from the WAL, writing them, and an fsync of each file).
// SQLite's own, every 1,000 WAL pages by default, runs inside the COMMIT that crosses the
// mark: on the one writer connection, so under group commit it was a sixth of the
// committer's CPU, and two fsyncs, paid by every write queued behind it. So a
// connection of its own checkpoints in the background, at most every checkpointPause
// while there are commits (PASSIVE: it never waits for, or blocks, the writer or a
// reader).
//
// A checkpoint running beside the writer copies the frames committed when it started; the
// WAL starts over from its beginning only when a write transaction finds every frame
// copied, which under a steady stream of writes never happens. So the writer keeps
// SQLite's checkpoint, at walRestartFrames instead of 1,000: it bounds the WAL (16 MiB of
// 4 KiB pages, plus what commits while a background checkpoint runs: the writer's gives
// up then and is tried again after its next commit), and by then the background
// checkpoints have copied all but the last moments' frames.
//
// Durability is SQLite's own either way: a commit is in the WAL (synchronous=NORMAL), and
// a checkpoint syncs the WAL before it writes a page to the database file.

// checkpointPause is the least time between two background checkpoints: the pages a
// burst of groups rewrites (index pages, FTS5's segments) are copied once per checkpoint,
// not once per group.
const checkpointPause = 50 * time.Millisecond

// walRestartFrames is the writer's wal_autocheckpoint, in pages.
const walRestartFrames = 4000

// checkpointer runs SQLite's checkpoints in the background (see above).
type checkpointer struct {
	conn *sql.DB       // one read-write connection of its own
	wake chan struct{} // buffered: a commit never waits
	stop chan struct{}
	done chan struct{}
}

func newCheckpointer(conn *sql.DB, log *slog.Logger) *checkpointer {
	c := &checkpointer{conn: conn, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run(log)
	return c
}

func (c *checkpointer) run(log *slog.Logger) {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		if _, err := c.conn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			log.Warn("store: checkpoint failed", "err", err)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointPause):
		}
	}
}

// close stops the background checkpoints; closing the last connection checkpoints what
// is left.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.conn.Close()
}

// committed is called after each commit on the writer: it wakes the background
// checkpoint.
func (db *DB) committed() {
	if db.checkpoints == nil {
		return // PostgreSQL
	}
	select {
	case db.checkpoints.wake <- struct{}{}:
	default:
	}
}
