package store

import (
	"context"
	"time"

	"plaza/internal/plaza"
)

// SetRankedMatches lowers the window a relevance page ranks, so a test can search more
// matches than it holds without inserting thousands of products. Call it before using db.
func (db *DB) SetRankedMatches(n int) { db.rankedMatches = n }

// GroupWrite is groupWrite, for the group-commit tests: a write with events of its own
// making.
func (db *DB) GroupWrite(ctx context.Context, evs []plaza.Outgoing, fn func(ctx context.Context, q Querier) error) error {
	return db.groupWrite(ctx, evs, fn)
}

// RiderWrite is riderWrite, for the group-commit tests.
func (db *DB) RiderWrite(ctx context.Context, fn func(ctx context.Context, q Querier) error) error {
	return db.riderWrite(ctx, fn)
}

// SetRiderWait replaces how long a rider waits for company.
func (db *DB) SetRiderWait(d time.Duration) {
	db.commits.mu.Lock()
	defer db.commits.mu.Unlock()
	db.commits.riderWait = d
}

// Commits reports how many writes wait for a group, and whether a group is being run.
func (db *DB) Commits() (queued int, running bool) {
	db.commits.mu.Lock()
	defer db.commits.mu.Unlock()
	return len(db.commits.queue), db.commits.running
}

// OutboxLockClass is the first key of the outbox's advisory locks on PostgreSQL.
const OutboxLockClass = outboxLockClass
