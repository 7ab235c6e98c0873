package store

import (
	"context"
	"database/sql"
	"errors"

	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// Chat is the chat rooms and messages tables; it implements chat.Store.
type Chat struct{ db *DB }

// Chat returns the chat tables of db.
func (db *DB) Chat() Chat { return Chat{db: db} }

var _ chat.Store = Chat{}

const roomColumns = `slug, name, created_by, created_at`

func scanRoom(row interface{ Scan(...any) error }, r *chat.Room) error {
	return row.Scan(&r.Slug, &r.Name, &r.CreatedBy, ScanTime(&r.CreatedAt))
}

// CreateRoom inserts r; EConflict when the slug is taken.
func (s Chat) CreateRoom(ctx context.Context, r chat.Room) error {
	return s.db.Tx(ctx, func(q Querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO chat_rooms (`+roomColumns+`) VALUES ($1, $2, $3, $4)`,
			r.Slug, r.Name, r.CreatedBy, Time(r.CreatedAt))
		return err
	})
}

// Room returns the room or ENotFound.
func (s Chat) Room(ctx context.Context, slug string) (chat.Room, error) {
	var r chat.Room
	err := scanRoom(s.db.readRow(ctx, `SELECT `+roomColumns+` FROM chat_rooms WHERE slug = $1`, slug), &r)
	return r, MapError(err)
}

// Rooms returns every room in slug order.
func (s Chat) Rooms(ctx context.Context) ([]chat.Room, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT `+roomColumns+` FROM chat_rooms ORDER BY slug`)
	if err != nil {
		return nil, MapError(err)
	}
	defer rows.Close()
	out := []chat.Room{}
	for rows.Next() {
		var r chat.Room
		if err := scanRoom(rows, &r); err != nil {
			return nil, MapError(err)
		}
		out = append(out, r)
	}
	return out, MapError(rows.Err())
}

const messageColumns = `id, room, user_id, user_name, text, client_id, sent_at`

func scanMessage(row interface{ Scan(...any) error }, m *chat.Message) error {
	return row.Scan(&m.ID, &m.Room, &m.UserID, &m.UserName, &m.Text, &m.ClientID, ScanTime(&m.SentAt))
}

// InsertMessage stores m, and events in the outbox in the same transaction; ENotFound when
// its room does not exist. The room is checked first so that the answer does not depend on
// how each driver reports a foreign key.
func (s Chat) InsertMessage(ctx context.Context, m chat.Message, events ...plaza.Outgoing) error {
	return s.db.txWithEvents(ctx, events, func(ctx context.Context, q Querier) error {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM chat_rooms WHERE slug = $1`, m.Room).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return plaza.Errorf(plaza.ENotFound, "no such room")
		}
		_, err := q.ExecContext(ctx, `INSERT INTO chat_messages (`+messageColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			m.ID, m.Room, m.UserID, m.UserName, m.Text, m.ClientID, Time(m.SentAt))
		return err
	})
}

// Message returns message id of room, or ENotFound.
func (s Chat) Message(ctx context.Context, room, id string) (chat.Message, error) {
	var m chat.Message
	err := scanMessage(s.db.readRow(ctx, `SELECT `+messageColumns+` FROM chat_messages WHERE room = $1 AND id = $2`, room, id), &m)
	return m, MapError(err)
}

// DeleteMessage removes message id of room, with events in the same transaction, or answers
// ENotFound.
func (s Chat) DeleteMessage(ctx context.Context, room, id string, events ...plaza.Outgoing) error {
	return s.db.txWithEvents(ctx, events, func(ctx context.Context, q Querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM chat_messages WHERE room = $1 AND id = $2`, room, id)
		return oneRow(res, err)
	})
}

// MessagesBefore returns up to limit messages of room before the ID before ("" for the
// newest), newest first: one walk of the primary key backwards.
func (s Chat) MessagesBefore(ctx context.Context, room, before string, limit int) ([]chat.Message, error) {
	if before == "" {
		return s.messages(ctx, `SELECT `+messageColumns+` FROM chat_messages WHERE room = $1 ORDER BY id DESC LIMIT $2`, room, limit)
	}
	return s.messages(ctx, `SELECT `+messageColumns+` FROM chat_messages WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, room, before, limit)
}

// MessagesAfter returns up to limit messages of room after the ID after, oldest first.
func (s Chat) MessagesAfter(ctx context.Context, room, after string, limit int) ([]chat.Message, error) {
	return s.messages(ctx, `SELECT `+messageColumns+` FROM chat_messages WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3`, room, after, limit)
}

func (s Chat) messages(ctx context.Context, query string, args ...any) ([]chat.Message, error) {
	rows, err := s.db.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, MapError(err)
	}
	defer rows.Close()
	out := []chat.Message{}
	for rows.Next() {
		var m chat.Message
		if err := scanMessage(rows, &m); err != nil {
			return nil, MapError(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, MapError(err)
	}
	return out, nil
}
