package store_test

import (
	"testing"
	"time"

	"plaza/internal/chat"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

func TestChatStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx, c := t.Context(), db.Chat()
		at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

		if r, err := c.Room(ctx, chat.General); err != nil || r.Name != "General" {
			t.Fatalf("general: %+v %v", r, err)
		}
		lobby := chat.Room{Slug: "lobby", Name: "Lobby", CreatedBy: "u1", CreatedAt: at}
		if err := c.CreateRoom(ctx, lobby); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateRoom(ctx, lobby); plaza.ErrorCodeOf(err) != plaza.EConflict {
			t.Fatalf("duplicate slug: %v", err)
		}
		rooms, err := c.Rooms(ctx)
		if err != nil || len(rooms) != 2 || rooms[0].Slug != chat.General || rooms[1].Slug != "lobby" ||
			rooms[1].CreatedBy != "u1" || !rooms[1].CreatedAt.Equal(at.Truncate(time.Microsecond)) {
			t.Fatalf("Rooms = %+v, %v", rooms, err)
		}
		if _, err := c.Room(ctx, "nope"); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("unknown room: %v", err)
		}

		var ids []string
		for i := range 5 {
			m := chat.Message{ID: plaza.NewID(), Room: "lobby", UserID: "u1", UserName: "Ann", Text: string(rune('a' + i)), SentAt: at, ClientID: "c"}
			if err := c.InsertMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		if err := c.InsertMessage(ctx, chat.Message{ID: plaza.NewID(), Room: "nope", UserID: "u1", Text: "x", SentAt: at}); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("message to an unknown room: %v", err)
		}
		if err := c.InsertMessage(ctx, chat.Message{ID: plaza.NewID(), Room: chat.General, UserID: "u2", Text: "elsewhere", SentAt: at}); err != nil {
			t.Fatal(err)
		}

		texts := func(ms []chat.Message) string {
			s := ""
			for _, m := range ms {
				if m.Room != "lobby" {
					t.Fatalf("message of room %q in lobby's history", m.Room)
				}
				s += m.Text
			}
			return s
		}
		newest, err := c.MessagesBefore(ctx, "lobby", "", 3)
		if err != nil || texts(newest) != "edc" {
			t.Fatalf("newest 3: %q %v", texts(newest), err)
		}
		older, err := c.MessagesBefore(ctx, "lobby", newest[2].ID, 3)
		if err != nil || texts(older) != "ba" {
			t.Fatalf("before c: %q %v", texts(older), err)
		}
		after, err := c.MessagesAfter(ctx, "lobby", ids[1], 10)
		if err != nil || texts(after) != "cde" {
			t.Fatalf("after b: %q %v", texts(after), err)
		}
		m, err := c.Message(ctx, "lobby", ids[0])
		if err != nil || m.Text != "a" || m.UserName != "Ann" || m.ClientID != "c" || !m.SentAt.Equal(at.Truncate(time.Microsecond)) {
			t.Fatalf("Message = %+v, %v", m, err)
		}
		if _, err := c.Message(ctx, chat.General, ids[0]); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("message looked up in the wrong room: %v", err)
		}
		if err := c.DeleteMessage(ctx, "lobby", ids[2]); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteMessage(ctx, "lobby", ids[2]); plaza.ErrorCodeOf(err) != plaza.ENotFound {
			t.Fatalf("second delete: %v", err)
		}
		if after, _ := c.MessagesAfter(ctx, "lobby", ids[0], 10); texts(after) != "bde" {
			t.Fatalf("after a delete: %q", texts(after))
		}
	})
}
