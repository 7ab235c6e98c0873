package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"plaza/internal/plaza"
)

// The transactional outbox. A write that changes something events describe stores its
// events (plaza.Outgoing) in the outbox table inside its own transaction, so an event
// exists if and only if its change was committed; RelayOutbox publishes the rows to the
// bus after the commit. A crash between commit and publish loses nothing: the rows wait
// for the next relay.

// Publisher is where the relay publishes (bus.Bus implements it).
type Publisher interface {
	Publish(ctx context.Context, stream string, ev plaza.Event) (plaza.Event, error)
}

// ManyPublisher is a Publisher that also publishes a batch in one round trip (the Redis
// bus): in order, returning how many were published before the first failure and its
// error. The relay publishes each batch so when its Publisher is one.
type ManyPublisher interface {
	Publisher
	PublishMany(ctx context.Context, evs []plaza.Outgoing) (int, error)
}

// outboxLockClass is the first key of the advisory locks the outbox takes on PostgreSQL:
// per stream (the second key, hashtext of its name) around each write, and
// outboxRelayLock, held by the one relay of all instances.
const (
	outboxLockClass = 0x706c617a // "plaz"
	outboxRelayLock = 0
)

// Relay pacing. A relay is woken at once by commits in its own process and polls for
// those of other instances (PostgreSQL); after a failed publish it retries with backoff
// capped so that events flow again well within a second of the bus returning.
const (
	relayPoll       = 200 * time.Millisecond
	relayBatch      = 100
	relayMaxBackoff = 400 * time.Millisecond
	relayTimeout    = 2 * time.Second
	// replayWindow and replayMax bound what the relay publishes again after a failure:
	// the events it published within replayWindow before its last success, at most
	// replayMax of them (within the bus's DedupeWindow, so readers drop them as repeats).
	replayWindow = 2 * time.Second
	replayMax    = 512
)

// The relay's delete of the rows it published, given as a JSON array of seqs.
const (
	outboxDeleteSQLite   = `DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each($1))`
	outboxDeletePostgres = `DELETE FROM outbox WHERE seq IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)`
)

// outboxInsert stores events: insertRows adds the rows of (stream, event, created_at).
const outboxInsert = `INSERT INTO outbox (stream, event, created_at) VALUES `

// writeEvents stores evs in the outbox inside the caller's transaction q, which holds the
// streams' locks already (lockStreams), in one statement. Events without a Key get one.
func (db *DB) writeEvents(ctx context.Context, q Querier, evs []plaza.Outgoing) error {
	if len(evs) == 0 {
		return nil
	}
	now := Time(time.Now())
	rows := make([][]any, len(evs))
	for i, o := range evs {
		if o.Stream == "" {
			return fmt.Errorf("store: outbox event %q has no stream", o.Event.Type)
		}
		ev := o.Event
		ev.ID = ""
		if ev.Key == "" {
			ev.Key = plaza.NewID()
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("store: encoding outbox event: %w", err)
		}
		rows[i] = []any{o.Stream, string(raw), now}
	}
	return insertRows(ctx, q, db.dialect, outboxInsert, rows)
}

// txWithEvents runs fn and stores evs with its change, atomically, through group commit
// (see commit.go): fn runs its statements with the ctx it is given. This process's relay
// is woken once the events are committed.
func (db *DB) txWithEvents(ctx context.Context, evs []plaza.Outgoing, fn func(ctx context.Context, q Querier) error) error {
	return db.groupWrite(ctx, evs, fn)
}

// wakeRelay tells this process's relay that events were committed.
func (db *DB) wakeRelay() {
	select {
	case db.outboxWake() <- struct{}{}:
	default:
	}
}

func (db *DB) outboxWake() chan struct{} {
	db.wakeOnce.Do(func() { db.wake = make(chan struct{}, 1) })
	return db.wake
}

// OutboxLen counts the events waiting to be published.
func (db *DB) OutboxLen(ctx context.Context) (int64, error) {
	var n int64
	err := db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n)
	return n, MapError(err)
}

// RelayOutbox publishes the outbox to pub until ctx ends, then returns nil: in seq order,
// so in order per stream; at least once, since a row is deleted only after its publish
// succeeded (a failure between the two publishes it again, and subscribers drop the
// repeated Key); with retries, stopping at the first failure so nothing overtakes it. On
// PostgreSQL only one instance relays at a time (a session advisory lock); the others
// stand by and take over when its connection goes.
func (db *DB) RelayOutbox(ctx context.Context, pub Publisher, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := relay{db: db, pub: pub, log: log}
	defer r.release()
	backoff := time.Duration(0)
	for {
		wait := relayPoll
		if r.lead(ctx) {
			sent, err := r.round(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				backoff = min(max(2*backoff, 25*time.Millisecond), relayMaxBackoff)
				wait = backoff/2 + rand.N(backoff/2+1)
				log.Warn("outbox: publishing failed; retrying", "retry_in", wait.String(), "err", err)
			case err == nil:
				backoff = 0
				if sent == relayBatch {
					wait = 0 // more waiting
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-db.outboxWake():
		case <-time.After(wait):
		}
	}
}

type relay struct {
	db   *DB
	pub  Publisher
	log  *slog.Logger
	lock *sql.Conn // PostgreSQL: the connection holding the relay lock
	// A bus that acknowledged an event may still lose it: a Redis without persistence
	// that dies before a slow reader has read it comes back empty. recent keeps what was
	// published lately; after a publish fails, replay has the next round publish it again
	// first (readers drop the repeated keys), so an event acknowledged just before the
	// failure is not lost with the server's memory.
	recent []sentEvent
	replay bool
}

// sentEvent is an event the relay published, and when.
type sentEvent struct {
	out plaza.Outgoing
	at  time.Time
}

// remember adds what a round published to recent, keeping the events within
// replayWindow of now, at most replayMax.
func (r *relay) remember(evs []plaza.Outgoing) {
	now := time.Now()
	for _, o := range evs {
		r.recent = append(r.recent, sentEvent{out: o, at: now})
	}
	drop := 0
	for drop < len(r.recent) && (now.Sub(r.recent[drop].at) > replayWindow || len(r.recent)-drop > replayMax) {
		drop++
	}
	r.recent = append(r.recent[:0], r.recent[drop:]...)
}

// publishAgain publishes recent again, in order.
func (r *relay) publishAgain(ctx context.Context) error {
	evs := make([]plaza.Outgoing, len(r.recent))
	for i, x := range r.recent {
		evs[i] = x.out
	}
	pctx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	if many, ok := r.pub.(ManyPublisher); ok {
		if _, err := many.PublishMany(pctx, evs); err != nil {
			return fmt.Errorf("publishing the last events again: %w", err)
		}
		return nil
	}
	for _, o := range evs {
		if _, err := r.pub.Publish(pctx, o.Stream, o.Event); err != nil {
			return fmt.Errorf("publishing the last events again: %w", err)
		}
	}
	return nil
}

// lead reports whether this process is the relay. On SQLite it always is (one process
// owns the file); on PostgreSQL it holds, or now takes, the relay lock.
func (r *relay) lead(ctx context.Context) bool {
	if r.db.dialect != Postgres {
		return true
	}
	if r.lock != nil {
		if r.lock.PingContext(ctx) == nil {
			return true
		}
		r.release()
	}
	conn, err := r.db.writer.Conn(ctx)
	if err != nil {
		return false
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2)`, outboxLockClass, outboxRelayLock).Scan(&ok); err != nil || !ok {
		conn.Close()
		return false
	}
	r.lock = conn
	return true
}

func (r *relay) release() {
	if r.lock != nil {
		// Closing returns the connection to the pool still holding the session lock;
		// unlock first.
		_, _ = r.lock.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1, $2)`, outboxLockClass, outboxRelayLock)
		r.lock.Close()
		r.lock = nil
	}
}

// round publishes one batch and deletes what it published. It returns how many rows it
// published, and the first error, where it stopped.
func (r *relay) round(ctx context.Context) (int, error) {
	if r.replay && len(r.recent) > 0 {
		if err := r.publishAgain(ctx); err != nil {
			return 0, err
		}
		r.log.Info("outbox: published the last events again after a failure", "events", len(r.recent))
	}
	r.replay = false
	// From the readers: on SQLite the writer stays free for writes (WAL shows them every
	// committed row). Prepared once: a round follows nearly every group commit, and
	// parsing the query had been a quarter of a round's CPU.
	rows, err := r.db.readRows(ctx, `SELECT seq, stream, event FROM outbox ORDER BY seq LIMIT $1`, relayBatch)
	if err != nil {
		return 0, err
	}
	type row struct {
		seq    int64
		stream string
		ev     plaza.Event
	}
	var batch []row
	for rows.Next() {
		var x row
		var raw string
		if err := rows.Scan(&x.seq, &x.stream, &raw); err != nil {
			rows.Close()
			return 0, err
		}
		if err := json.Unmarshal([]byte(raw), &x.ev); err != nil {
			// Written by writeEvents, so this is corruption: keep the row for a human
			// rather than drop an event, and hold the rest behind it (order).
			rows.Close()
			return 0, fmt.Errorf("outbox row %d does not decode: %w", x.seq, err)
		}
		batch = append(batch, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var published []string
	var pubErr error
	if many, ok := r.pub.(ManyPublisher); ok && len(batch) > 1 {
		// One round trip for the batch: on Redis a round trip per event had been a twelfth
		// of the server's CPU under a stream of creates.
		evs := make([]plaza.Outgoing, len(batch))
		for i, x := range batch {
			evs[i] = plaza.Outgoing{Stream: x.stream, Event: x.ev}
		}
		pctx, cancel := context.WithTimeout(ctx, relayTimeout)
		n, err := many.PublishMany(pctx, evs)
		cancel()
		n = min(max(n, 0), len(batch))
		for _, x := range batch[:n] {
			published = append(published, strconv.FormatInt(x.seq, 10))
		}
		if err != nil && n < len(batch) {
			pubErr = fmt.Errorf("%s on %s: %w", batch[n].ev.Type, batch[n].stream, err)
		} else if err != nil {
			pubErr = err
		}
		r.remember(evs[:n])
		batch = nil
	}
	for _, x := range batch {
		pctx, cancel := context.WithTimeout(ctx, relayTimeout)
		_, err := r.pub.Publish(pctx, x.stream, x.ev)
		cancel()
		if err != nil {
			pubErr = fmt.Errorf("%s on %s: %w", x.ev.Type, x.stream, err)
			break
		}
		published = append(published, strconv.FormatInt(x.seq, 10))
		r.remember([]plaza.Outgoing{{Stream: x.stream, Event: x.ev}})
	}
	if pubErr != nil {
		r.replay = true
	}
	if len(published) > 0 {
		// Exactly the rows published: on PostgreSQL a lower seq of another stream may
		// commit after this batch was read, and must not be deleted unpublished. The
		// delete rides with the next group of writes (riderWrite) rather than taking the
		// writer for a transaction of its own; the next round waits for it, so it reads
		// none of these rows again.
		// One statement text whatever the rows, so it is prepared once (see groupTx).
		del, seqs := outboxDeleteSQLite, "["+strings.Join(published, ",")+"]"
		if r.db.dialect == Postgres {
			del = outboxDeletePostgres
		}
		if err := r.db.riderWrite(ctx, func(ctx context.Context, q Querier) error {
			_, err := q.ExecContext(ctx, del, seqs)
			return err
		}); err != nil {
			return len(published), fmt.Errorf("deleting published rows (they will be published again): %w", err)
		}
	}
	return len(published), pubErr
}
