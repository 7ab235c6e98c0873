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
// every write queued when it is free in one transaction, in queue order:
//
//   - a write that fails (a unique violation, a missed version, a panic) is undone, with
//     its events, and gets its own error; the others commit (see runGroup);
//   - every caller is answered after the one COMMIT: acknowledged means committed, and a
//     failed COMMIT (or a broken transaction) fails every write of the group;
//   - events are numbered in queue order inside the transaction, and groups commit one
//     after another, so the outbox keeps commit order.
//
// A write arriving at an idle committer runs at once, in a transaction of its own; the ones
// arriving meanwhile make up the next group. Under load that alone splits the callers:
// the writes answered together come back one by one, and the first finds the committer
// free and commits alone, with the pages of a whole transaction (on SQLite 20 to 30 WAL
// pages for a lone create, about 6 per create in a group of 16), and groups of one stay
// common. So, right after groups of up to n writes (peak, which decays by an eighth a
// group), a queue holding fewer than n/2 ordinary writes waits for company: until n/2 are
// queued, or no write has arrived for as long as the last group took (at most
// companyWait), and at most 2×companyWait after the last group ended. A lone writer
// (groups of one) never waits, nor does a write arriving after a pause. Under 16 clients'
// creates on a busy two-core machine this cut the groups of one from more than half of
// all groups to between a seventh and a third.
//
// A rider (riderWrite) is housekeeping that nobody waits on to be answered quickly, such
// as the relay's delete of the outbox rows it published. It joins the next group of
// ordinary writes and starts a transaction of its own only after riderWait: under a
// steady stream of creates the relay deletes after nearly every commit, and a delete that
// found the committer idle had been a transaction of its own, with its own WAL pages.

// maxGroup bounds the writes of one transaction. In a group run with savepoints each is a
// subtransaction on PostgreSQL, and past 64 of them every other session's snapshots get
// slower (the subxid cache overflows); on SQLite it bounds how long a group holds the
// writer.
const maxGroup = 64

// groupTimeout bounds one group's transaction. It is not any caller's deadline: a caller
// leaving must not interrupt the statements of others (on SQLite an interrupted INSERT
// rolls back the whole transaction).
const groupTimeout = 10 * time.Second

// companyWait bounds a wait for company (see above), whatever the last group took: a
// group that waited for the writer connection (DB.Tx) took long without being slow.
const companyWait = 2 * time.Millisecond

// riderWait is how long a rider waits for ordinary writes to join before it is committed
// alone: with writes arriving it never waits that long; idle, the outbox rows the relay
// published are deleted this much later.
const riderWait = 50 * time.Millisecond

// pendingWrite is one write waiting for, or in, a group.
type pendingWrite struct {
	ctx context.Context // the caller's: a write whose caller left before its turn is dropped
	evs []plaza.Outgoing
	fn  func(ctx context.Context, q Querier) error
	// products, when set, says that fn inserts exactly these products (Products.Create):
	// a run of such writes in a group is inserted with one statement per table.
	products []catalog.Product
	// rider marks a write that waits for company (riderWrite); queued is when it was
	// queued.
	rider  bool
	queued time.Time
	done   chan writeResult // buffered: the committer never waits for a caller
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
	mu    sync.Mutex
	queue []*pendingWrite
	// writers counts the queued writes that are not riders.
	writers int
	running bool
	// timed is set while a timer will start the goroutine for riders waiting alone.
	timed bool
	// riderWait, when set, replaces the constant (tests).
	riderWait time.Duration
	// What a wait for company goes by: when the last group answered its writes and how
	// long it ran, the decaying peak of ordinary writes per group, and when the last
	// ordinary write arrived.
	lastEnd  time.Time
	lastTook time.Duration
	peak     int
	arrived  time.Time
	// want, while the goroutine waits for company, is the ordinary writes it waits for;
	// company wakes it (buffered: enqueue never blocks).
	want    int
	company chan struct{}
	closed  bool
	idle    sync.WaitGroup // the goroutine, for Close
}

// errPanicked stands in for a write that panicked when its group has to say why it failed.
var errPanicked = errors.New("store: a write in this transaction panicked")

// groupWrite runs fn and stores evs in the outbox, atomically, through the committer (see
// above). fn must run its statements with the ctx it is given, not its caller's. The error
// is a *plaza.Error; a panic in fn goes on in the caller's goroutine.
func (db *DB) groupWrite(ctx context.Context, evs []plaza.Outgoing, fn func(ctx context.Context, q Querier) error) error {
	return db.enqueue(ctx, &pendingWrite{evs: evs, fn: fn})
}

// riderWrite runs fn through the committer as a rider (see above): in the next group of
// ordinary writes, or alone after riderWait.
func (db *DB) riderWrite(ctx context.Context, fn func(ctx context.Context, q Querier) error) error {
	return db.enqueue(ctx, &pendingWrite{fn: fn, rider: true, queued: time.Now()})
}

// groupInsert inserts ps with evs through the committer: groupWrite for an insert that a
// group may merge with the inserts queued next to it.
func (db *DB) groupInsert(ctx context.Context, ps []catalog.Product, evs []plaza.Outgoing) error {
	return db.enqueue(ctx, &pendingWrite{evs: evs, products: ps, fn: func(ctx context.Context, q Querier) error {
		return insertProducts(ctx, q, db.dialect, ps)
	}})
}

func (db *DB) enqueue(ctx context.Context, w *pendingWrite) error {
	if err := ctx.Err(); err != nil {
		return MapError(err)
	}
	w.ctx, w.done = ctx, make(chan writeResult, 1)
	c := &db.commits
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return plaza.Errorf(plaza.EUnavailable, "the database is closed")
	}
	c.queue = append(c.queue, w)
	if !w.rider {
		c.writers++
		c.arrived = time.Now()
		if c.want > 0 && c.writers >= c.want {
			c.wakeForCompany()
		}
	}
	db.startCommits()
	c.mu.Unlock()

	var r writeResult
	select {
	case r = <-w.done:
	case <-ctx.Done():
		c.mu.Lock()
		if !w.taken {
			c.queue = slices.DeleteFunc(c.queue, func(x *pendingWrite) bool { return x == w })
			if !w.rider {
				c.writers--
			}
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

// riderDue returns how long the queue's riders may still wait for company: 0 when a group
// should run now (an ordinary write is queued, the oldest rider has waited riderWait, or
// the store is closing).
func (c *committer) riderDue() time.Duration {
	if c.writers > 0 || c.closed || len(c.queue) == 0 {
		return 0
	}
	wait := riderWait
	if c.riderWait > 0 {
		wait = c.riderWait
	}
	return max(0, wait-time.Since(c.queue[0].queued))
}

// companyDeadline returns until when the committer waits for company before its next
// group (see above), and false when it does not wait, as of now.
func (c *committer) companyDeadline(now time.Time) (time.Time, bool) {
	if c.closed || c.writers == 0 || 2*c.writers >= c.peak {
		return time.Time{}, false
	}
	g := min(c.lastTook, companyWait)
	from := c.lastEnd
	if c.arrived.After(from) {
		from = c.arrived
	}
	deadline := from.Add(g)
	if end := c.lastEnd.Add(2 * companyWait); deadline.After(end) {
		deadline = end
	}
	return deadline, now.Before(deadline)
}

// awaitCompany waits, with c.mu held (and released meanwhile), while companyDeadline says
// to.
func (c *committer) awaitCompany() {
	for {
		deadline, ok := c.companyDeadline(time.Now())
		if !ok {
			return
		}
		if c.company == nil {
			c.company = make(chan struct{}, 1)
		}
		c.want = (c.peak + 1) / 2
		c.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-c.company:
		case <-t.C:
		}
		t.Stop()
		c.mu.Lock()
		c.want = 0
	}
}

// wakeForCompany ends a wait for company, with c.mu held.
func (c *committer) wakeForCompany() {
	select {
	case c.company <- struct{}{}:
	default:
	}
}

// startCommits starts the committer's goroutine, with c.mu held, when the queue has a group
// to run now; when it holds only riders that may wait, it sets a timer to look again.
func (db *DB) startCommits() {
	c := &db.commits
	if c.running || len(c.queue) == 0 {
		return
	}
	if wait := c.riderDue(); wait > 0 {
		if !c.timed {
			c.timed = true
			time.AfterFunc(wait, func() {
				c.mu.Lock()
				c.timed = false
				db.startCommits()
				c.mu.Unlock()
			})
		}
		return
	}
	c.running = true
	c.idle.Add(1)
	go db.commitLoop()
}

// commitLoop commits groups until the queue is empty, or holds only riders that may wait.
func (db *DB) commitLoop() {
	c := &db.commits
	defer c.idle.Done()
	for {
		c.mu.Lock()
		c.awaitCompany()
		n := min(len(c.queue), maxGroup)
		if n == 0 || c.riderDue() > 0 {
			c.running = false
			db.startCommits() // riders alone: the timer
			c.mu.Unlock()
			return
		}
		group := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		writers := 0
		for _, w := range group {
			w.taken = true
			if !w.rider {
				writers++
			}
		}
		c.writers -= writers
		c.mu.Unlock()
		start := time.Now()
		db.commitGroup(group)
		end := time.Now()
		c.mu.Lock()
		c.lastEnd, c.lastTook = end, end.Sub(start)
		c.peak = max(writers, c.peak-(c.peak+7)/8)
		c.mu.Unlock()
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
		db.committed() // after the answers: it may checkpoint on the writer
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
//
// It first runs them without savepoints: a savepoint costs a round trip on PostgreSQL,
// and on SQLite makes FTS5 flush its pending terms, which a transaction of many writes
// otherwise does once. If a write fails, that attempt is rolled back whole and the group
// runs again, each write in a savepoint. Writes therefore may run twice; they touch only
// the database, and their first run left nothing.
func (db *DB) runGroup(group []*pendingWrite, results []writeResult) error {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	db.prepareWrites(ctx, group)
	err, retry := db.attempt(ctx, group, results, false)
	if !retry {
		return err
	}
	clear(results)
	err, _ = db.attempt(ctx, group, results, true)
	return err
}

// attempt runs group in one transaction. With savepoints a failing write is undone alone;
// without, the first failing write of a group of several rolls the attempt back and it
// reports retry.
func (db *DB) attempt(ctx context.Context, group []*pendingWrite, results []writeResult, savepoints bool) (err error, retry bool) {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return MapError(fmt.Errorf("store: begin: %w", err)), false
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
		return MapError(err), false
	}
	q := groupTx{tx: tx, db: db}
	for i := 0; i < len(group); i++ {
		w := group[i]
		if !savepoints {
			if j := insertRun(group, i); j > i+1 {
				// Consecutive inserts: one statement per table for all of them.
				if err := db.runInserts(ctx, q, group[i:j]); err != nil {
					return nil, true
				}
				i = j - 1
				continue
			}
			results[i] = db.runWrite(ctx, q, w)
			if results[i].err == nil && results[i].panicked == nil {
				continue
			}
			if len(group) > 1 {
				return nil, true
			}
			if results[i].panicked != nil {
				return errPanicked, false
			}
			return results[i].err, false
		}
		if _, err := q.ExecContext(ctx, `SAVEPOINT w`); err != nil {
			return MapError(fmt.Errorf("store: savepoint: %w", err)), false
		}
		results[i] = db.runWrite(ctx, q, w)
		if results[i].err == nil && results[i].panicked == nil {
			if _, err := q.ExecContext(ctx, `RELEASE w`); err != nil {
				return MapError(fmt.Errorf("store: release savepoint: %w", err)), false
			}
			continue
		}
		// Undo this write alone. If that fails the transaction is broken (SQLite rolls
		// back the whole transaction on some errors), and the group fails with it.
		if _, err := q.ExecContext(ctx, `ROLLBACK TO w`); err != nil {
			return MapError(fmt.Errorf("store: rollback to savepoint: %w", err)), false
		}
		if _, err := q.ExecContext(ctx, `RELEASE w`); err != nil {
			return MapError(fmt.Errorf("store: release savepoint: %w", err)), false
		}
	}
	done = true
	if err := tx.Commit(); err != nil {
		return MapError(fmt.Errorf("store: commit: %w", err)), false
	}
	return nil, false
}

// insertRun returns the end of the run of inserts (groupInsert) starting at group[i].
func insertRun(group []*pendingWrite, i int) int {
	j := i
	for j < len(group) && group[j].products != nil {
		j++
	}
	return j
}

// runInserts runs a run of inserts as one: their products, then their events in order.
func (db *DB) runInserts(ctx context.Context, q Querier, run []*pendingWrite) error {
	var ps []catalog.Product
	var evs []plaza.Outgoing
	for _, w := range run {
		ps = append(ps, w.products...)
		evs = append(evs, w.evs...)
	}
	if err := insertProducts(ctx, q, db.dialect, ps); err != nil {
		return err
	}
	return db.writeEvents(ctx, q, evs)
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

// closeCommits refuses new writes and waits for the queued ones, riders included, to be
// committed.
func (db *DB) closeCommits() {
	c := &db.commits
	c.mu.Lock()
	c.closed = true
	if c.want > 0 {
		c.wakeForCompany()
	}
	db.startCommits()
	c.mu.Unlock()
	c.idle.Wait()
}

// groupTx is a group's transaction. On SQLite the statements of writes run prepared when
// prepareWrites prepared them (writeStatements, and the merged inserts of the group's runs
// of creates): modernc's SQLite otherwise parses each one again, a sixth of a lone create's
// CPU, and a merged insert of n rows is as long to parse as n inserts. PostgreSQL needs
// none of this: pgx prepares and caches every statement per connection.
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

// writeStatements are the statements of writes that groupTx always runs prepared on
// SQLite: a product's insert, its path rows at every depth, its outbox row, the relay's
// delete, and the savepoints.
var writeStatements = func() []string {
	out := []string{`SAVEPOINT w`, `RELEASE w`, `ROLLBACK TO w`, outboxDeleteSQLite,
		insertSQL(outboxInsert, SQLite, 1, 3), insertSQL(productInsert, SQLite, 1, len(productColumns))}
	for n := 1; n <= catalog.MaxSubcategory+1; n++ {
		out = append(out, insertSQL(pathInsert, SQLite, n, 2+len(pathColumns)))
	}
	return out
}()

// maxWriteStmts bounds the statements prepared on SQLite's writer: writeStatements and the
// merged inserts, one per table and row count (a run of up to maxGroup creates, and their
// path rows). Past it a new shape runs unprepared.
const maxWriteStmts = 512

// prepareWrites prepares, on SQLite's writer, writeStatements (once) and the merged inserts
// group's runs of creates will run (once per shape). It runs in the committer before the
// group's transaction, when it can wait for the one connection, and only the committer
// reads writeStmts. If preparing writeStatements fails (a database not migrated yet) every
// statement runs unprepared and it is tried again next time; a merged insert that fails to
// prepare runs unprepared.
func (db *DB) prepareWrites(ctx context.Context, group []*pendingWrite) {
	if db.dialect != SQLite {
		return
	}
	if db.writeStmts == nil {
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
	for i := 0; i < len(group); i++ {
		j := insertRun(group, i)
		if j <= i+1 {
			continue
		}
		var products, paths, events int
		for _, w := range group[i:j] {
			products += len(w.products)
			for k := range w.products {
				paths += pathCount(&w.products[k])
			}
			events += len(w.evs)
		}
		db.prepareInsert(ctx, productInsert, products, len(productColumns))
		db.prepareInsert(ctx, pathInsert, paths, 2+len(pathColumns))
		db.prepareInsert(ctx, outboxInsert, events, 3)
		i = j - 1
	}
}

// prepareInsert prepares the statements insertRows runs for rows rows of cols values.
func (db *DB) prepareInsert(ctx context.Context, insert string, rows, cols int) {
	per := rowsPerInsert(cols)
	for _, n := range []int{min(rows, per), rows % per} {
		if n == 0 {
			continue
		}
		query := insertSQL(insert, SQLite, n, cols)
		if _, ok := db.writeStmts[query]; ok || len(db.writeStmts) >= maxWriteStmts {
			continue
		}
		if st, err := db.writer.PrepareContext(ctx, query); err == nil {
			db.writeStmts[query] = st
		}
	}
}
