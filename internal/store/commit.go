package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"plaza/internal/catalog"
	"plaza/internal/plaza"
)

// Group commit. What a write costs beyond its own statements is the transaction around
// it: BEGIN, the pages COMMIT appends to SQLite's WAL (or PostgreSQL's WAL flush), FTS5
// flushing its pending terms, and on PostgreSQL the per-stream outbox lock held until the
// commit. Writes with events (txWithEvents) therefore go to the DB's committer, which runs
// every write queued when it is free in one transaction, in queue order, each inside a
// savepoint of its own:
//
//   - a write that fails (a unique violation, a missed version, a panic) is rolled back
//     to its savepoint, with its events, and gets its own error; the others go on;
//   - every caller is answered after the one COMMIT: acknowledged means committed, and a
//     failed COMMIT (or a broken transaction) fails every write of the group;
//   - events are numbered in queue order inside the transaction, and groups commit one
//     after another, so the outbox keeps commit order.
//
// There is no waiting for company: a write arriving at an idle committer runs at once, in
// a transaction of its own (and without a savepoint); the ones arriving meanwhile make up
// the next group.

// maxGroup bounds the writes of one transaction. Each is a subtransaction on PostgreSQL,
// and past 64 of them every other session's snapshots get slower (the subxid cache
// overflows); on SQLite it bounds how long a group holds the writer.
const maxGroup = 64

// groupTimeout bounds one group's transaction. It is not any caller's deadline: a caller
// leaving must not interrupt the statements of others (on SQLite an interrupted INSERT
// rolls back the whole transaction).
const groupTimeout = 10 * time.Second

// pendingWrite is one write waiting for, or in, a group.
type pendingWrite struct {
	ctx  context.Context // the caller's: a write whose caller left before its turn is dropped
	evs  []plaza.Outgoing
	fn   func(ctx context.Context, q Querier) error
	done chan writeResult // buffered: the committer never waits for a caller
	// taken is set, under committer.mu, when a group takes the write: from then on its
	// caller waits for the outcome.
	taken bool
}

type writeResult struct {
	err error
	// panicked is what fn panicked with, to go on panicking in the caller's goroutine.
	panicked any
}

// committer queues writes for group commit; its goroutine runs only while there is work.
type committer struct {
	mu      sync.Mutex
	queue   []*pendingWrite
	running bool
	closed  bool
	idle    sync.WaitGroup // the goroutine, for Close
}

// errPanicked stands in for a write that panicked when its group has to say why it failed.
var errPanicked = errors.New("store: a write in this transaction panicked")

// groupWrite runs fn and stores evs in the outbox, atomically, through the committer (see
// above). fn must run its statements with the ctx it is given, not its caller's. The error
// is a *plaza.Error; a panic in fn goes on in the caller's goroutine.
func (db *DB) groupWrite(ctx context.Context, evs []plaza.Outgoing, fn func(ctx context.Context, q Querier) error) error {
	if err := ctx.Err(); err != nil {
		return MapError(err)
	}
	w := &pendingWrite{ctx: ctx, evs: evs, fn: fn, done: make(chan writeResult, 1)}
	c := &db.commits
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return plaza.Errorf(plaza.EUnavailable, "the database is closed")
	}
	c.queue = append(c.queue, w)
	if !c.running {
		c.running = true
		c.idle.Add(1)
		go db.commitLoop()
	}
	c.mu.Unlock()

	var r writeResult
	select {
	case r = <-w.done:
	case <-ctx.Done():
		c.mu.Lock()
		if !w.taken {
			c.queue = slices.DeleteFunc(c.queue, func(x *pendingWrite) bool { return x == w })
			c.mu.Unlock()
			return MapError(ctx.Err())
		}
		c.mu.Unlock()
		// Already in a transaction: the answer says whether it committed.
		r = <-w.done
	}
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// commitLoop commits groups until the queue is empty.
func (db *DB) commitLoop() {
	c := &db.commits
	defer c.idle.Done()
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxGroup)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		group := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		for _, w := range group {
			w.taken = true
		}
		c.mu.Unlock()
		db.commitGroup(group)
	}
}

// commitGroup runs group in one transaction and answers every write of it.
func (db *DB) commitGroup(group []*pendingWrite) {
	results := make([]writeResult, len(group))
	err := db.runGroup(group, results)
	for i, w := range group {
		r := results[i]
		if err != nil && r.err == nil && r.panicked == nil {
			r.err = err
		}
		w.done <- r
	}
	if err == nil {
		for i, w := range group {
			if len(w.evs) > 0 && results[i].err == nil && results[i].panicked == nil {
				db.wakeRelay()
				break
			}
		}
	}
}

// runGroup runs group's writes in one transaction, storing each write's own outcome in
// results, and returns the transaction's: nil when it committed.
func (db *DB) runGroup(group []*pendingWrite, results []writeResult) error {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	db.prepareWrites(ctx)
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return MapError(fmt.Errorf("store: begin: %w", err))
	}
	done := false
	defer func() {
		if !done {
			if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
				db.log.Warn("store: rollback failed", "err", err)
			}
		}
	}()
	if err := db.lockStreams(ctx, tx, group); err != nil {
		return MapError(err)
	}
	q := groupTx{tx: tx, db: db}
	alone := len(group) == 1
	for i, w := range group {
		if alone {
			results[i] = db.runWrite(ctx, q, w)
			if results[i].panicked != nil {
				return errPanicked
			}
			if results[i].err != nil {
				return results[i].err
			}
			continue
		}
		if _, err := q.ExecContext(ctx, `SAVEPOINT w`); err != nil {
			return MapError(fmt.Errorf("store: savepoint: %w", err))
		}
		results[i] = db.runWrite(ctx, q, w)
		if results[i].err == nil && results[i].panicked == nil {
			if _, err := q.ExecContext(ctx, `RELEASE w`); err != nil {
				return MapError(fmt.Errorf("store: release savepoint: %w", err))
			}
			continue
		}
		// Undo this write alone. If that fails the transaction is broken (SQLite rolls
		// back the whole transaction on some errors), and the group fails with it.
		if _, err := q.ExecContext(ctx, `ROLLBACK TO w`); err != nil {
			return MapError(fmt.Errorf("store: rollback to savepoint: %w", err))
		}
		if _, err := q.ExecContext(ctx, `RELEASE w`); err != nil {
			return MapError(fmt.Errorf("store: release savepoint: %w", err))
		}
	}
	done = true
	if err := tx.Commit(); err != nil {
		return MapError(fmt.Errorf("store: commit: %w", err))
	}
	return nil
}

// runWrite runs one write and its outbox rows in the group's transaction.
func (db *DB) runWrite(ctx context.Context, q Querier, w *pendingWrite) (r writeResult) {
	defer func() {
		if p := recover(); p != nil {
			r = writeResult{panicked: p}
		}
	}()
	if err := w.fn(ctx, q); err != nil {
		return writeResult{err: MapError(err)}
	}
	if err := db.writeEvents(ctx, q, w.evs); err != nil {
		return writeResult{err: MapError(err)}
	}
	return writeResult{}
}

// lockStreams takes, on PostgreSQL, the outbox lock of every stream the group writes
// events to, in name order (two instances' groups never wait for each other in a cycle),
// before any write: each stream's groups are serialized from here to their commit, so a
// stream's rows are numbered in commit order and the relay, reading in seq order, never
// publishes a later event before an earlier one that was still uncommitted. Taking them up
// front, outside the savepoints, keeps them held when a write is rolled back.
func (db *DB) lockStreams(ctx context.Context, tx *sql.Tx, group []*pendingWrite) error {
	if db.dialect != Postgres {
		return nil // one writer: transactions are serialized already
	}
	var streams []string
	for _, w := range group {
		for _, o := range w.evs {
			streams = append(streams, o.Stream)
		}
	}
	slices.Sort(streams)
	for _, s := range slices.Compact(streams) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, outboxLockClass, s); err != nil {
			return err
		}
	}
	return nil
}

// closeCommits refuses new writes and waits for the queued ones to be committed.
func (db *DB) closeCommits() {
	c := &db.commits
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.idle.Wait()
}

// groupTx is a group's transaction. On SQLite the statements every write of a kind repeats
// (writeStatements) run prepared: modernc's SQLite otherwise parses each one again, a
// sixth of a create's CPU. PostgreSQL needs none of this: pgx prepares and caches every
// statement per connection.
type groupTx struct {
	tx *sql.Tx
	db *DB
}

func (g groupTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := g.db.writeStmts[query]; ok {
		return g.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return g.tx.ExecContext(ctx, query, args...)
}

func (g groupTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return g.tx.QueryContext(ctx, query, args...)
}

func (g groupTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return g.tx.QueryRowContext(ctx, query, args...)
}

// writeStatements are the statements of writes that groupTx runs prepared on SQLite: a
// product's insert, its path rows at every depth, its outbox row, and the savepoints.
var writeStatements = func() []string {
	out := []string{`SAVEPOINT w`, `RELEASE w`, `ROLLBACK TO w`, outboxInsert,
		insertSQL(productInsert, SQLite, 1, len(productColumns))}
	for n := 1; n <= catalog.MaxSubcategory+1; n++ {
		out = append(out, insertSQL(pathInsert, SQLite, n, 2+len(pathColumns)))
	}
	return out
}()

// prepareWrites prepares writeStatements on SQLite's writer, once. It runs in the
// committer before a group's transaction, when it can wait for the one connection. If
// preparing fails (a database not migrated yet) the statements run unprepared and it is
// tried again next time.
func (db *DB) prepareWrites(ctx context.Context) {
	if db.dialect != SQLite || db.writeStmts != nil {
		return
	}
	stmts := make(map[string]*sql.Stmt, len(writeStatements))
	for _, query := range writeStatements {
		st, err := db.writer.PrepareContext(ctx, query)
		if err != nil {
			for _, st := range stmts {
				_ = st.Close()
			}
			return
		}
		stmts[query] = st
	}
	db.writeStmts = stmts
}
