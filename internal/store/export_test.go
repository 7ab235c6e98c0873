package store

// SetRankedMatches lowers the window a relevance page ranks, so a test can search more
// matches than it holds without inserting thousands of products. Call it before using db.
func (db *DB) SetRankedMatches(n int) { db.rankedMatches = n }
