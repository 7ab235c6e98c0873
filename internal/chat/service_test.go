package chat_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"plaza/internal/bus"
	"plaza/internal/chat"
	"plaza/internal/plaza"
	"plaza/internal/store"
	"plaza/internal/store/storetest"
)

var (
	ann   = plaza.Principal{UserID: "u-ann", Role: plaza.RoleUser}
	bob   = plaza.Principal{UserID: "u-bob", Role: plaza.RoleUser}
	admin = plaza.Principal{UserID: "u-root", Role: plaza.RoleAdmin}
)

func as(t *testing.T, p plaza.Principal) context.Context {
	return plaza.WithPrincipal(t.Context(), p)
}

func newService(t *testing.T) (*chat.Service, bus.Bus) {
	t.Helper()
	b := bus.NewMemory(bus.MemoryOptions{})
	t.Cleanup(func() { b.Close() })
	names := map[string]string{"u-ann": "Ann", "u-bob": "Bob", "u-root": "Root"}
	db := storetest.Open(t, store.SQLite)
	// The store's relay publishes the messages' events, as in Plaza.
	ctx, cancel := context.WithCancel(context.Background())
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		_ = db.RelayOutbox(ctx, b, nil)
	}()
	t.Cleanup(func() {
		cancel()
		<-relayed
	})
	svc := chat.NewService(chat.Options{
		Store:    db.Chat(),
		Presence: chat.NewPresenceMemory(0, nil),
		Bus:      b,
		CallerName: func(ctx context.Context) (string, error) {
			p, _ := plaza.PrincipalFrom(ctx)
			return names[p.UserID], nil
		},
	})
	return svc, b
}

func code(err error) plaza.ErrorCode { return plaza.ErrorCodeOf(err) }

func TestRoomsAndMessageRules(t *testing.T) {
	t.Parallel()
	svc, b := newService(t)
	if _, err := svc.CreateRoom(t.Context(), "lobby", "Lobby"); code(err) != plaza.EUnauthenticated {
		t.Fatalf("anonymous create: %v", err)
	}
	for _, bad := range [][2]string{{"Lobby", "x"}, {"-x", "x"}, {"lobby", " "}, {strings.Repeat("a", 41), "x"}} {
		if _, err := svc.CreateRoom(as(t, ann), bad[0], bad[1]); code(err) != plaza.EInvalid {
			t.Errorf("CreateRoom(%q, %q) = %v, want invalid", bad[0], bad[1], err)
		}
	}
	if _, err := svc.CreateRoom(as(t, ann), "lobby", " Lobby "); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateRoom(as(t, bob), "lobby", "Again"); code(err) != plaza.EConflict {
		t.Fatalf("duplicate: %v", err)
	}
	rooms, err := svc.Rooms(as(t, bob))
	if err != nil || len(rooms) != 2 || rooms[1].Name != "Lobby" || rooms[1].CreatedBy != ann.UserID {
		t.Fatalf("Rooms = %+v, %v", rooms, err)
	}

	sub, err := b.Subscribe(t.Context(), chat.Stream("lobby"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"", "   ", strings.Repeat("é", chat.MaxTextLen+1), "\xff"} {
		if _, err := svc.Send(as(t, ann), "lobby", text, ""); code(err) != plaza.EInvalid {
			t.Errorf("Send(%.10q) = %v, want invalid", text, err)
		}
	}
	if _, err := svc.Send(as(t, ann), "nowhere", "hi", ""); code(err) != plaza.ENotFound {
		t.Fatalf("unknown room: %v", err)
	}
	if _, err := svc.Send(t.Context(), "lobby", "hi", ""); code(err) != plaza.EUnauthenticated {
		t.Fatalf("anonymous send: %v", err)
	}
	m, err := svc.Send(as(t, ann), "lobby", strings.Repeat("é", chat.MaxTextLen), "tab-1")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-sub.Events():
		var got chat.Message
		json.Unmarshal(ev.Data, &got)
		if ev.Type != chat.EventMessage || got.ID != m.ID || got.UserName != "Ann" || got.ClientID != "tab-1" {
			t.Fatalf("published %s %+v", ev.Type, got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message was not published")
	}
}

func TestDeleteByAuthorOrAdminOnly(t *testing.T) {
	t.Parallel()
	svc, b := newService(t)
	sub, _ := b.Subscribe(t.Context(), chat.Stream(chat.General), "")
	var ids []string
	for range 2 {
		m, err := svc.Send(as(t, ann), chat.General, "mine", "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if err := svc.DeleteMessage(as(t, bob), chat.General, ids[0]); code(err) != plaza.EForbidden {
		t.Fatalf("someone else deletes: %v", err)
	}
	if err := svc.DeleteMessage(as(t, ann), chat.General, ids[0]); err != nil {
		t.Fatalf("author deletes: %v", err)
	}
	if err := svc.DeleteMessage(as(t, admin), chat.General, ids[1]); err != nil {
		t.Fatalf("admin deletes: %v", err)
	}
	if err := svc.DeleteMessage(as(t, admin), chat.General, ids[1]); code(err) != plaza.ENotFound {
		t.Fatalf("deleting again: %v", err)
	}
	var deleted []string
	for len(deleted) < 2 {
		select {
		case ev := <-sub.Events():
			if ev.Type == chat.EventMessageDeleted {
				var d chat.Deleted
				json.Unmarshal(ev.Data, &d)
				deleted = append(deleted, d.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("deletions announced: %v", deleted)
		}
	}
	if deleted[0] != ids[0] || deleted[1] != ids[1] {
		t.Fatalf("deleted %v, want %v", deleted, ids)
	}
	if page, _ := svc.History(as(t, bob), chat.General, plaza.PageRequest{Limit: 10}); len(page.Items) != 0 {
		t.Fatalf("history after deleting both: %+v", page.Items)
	}
}

func TestJoinRecoversOrReportsAGap(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	var sent []chat.Message
	for i := range chat.HistorySize + 10 {
		m, err := svc.Send(as(t, ann), chat.General, strings.Repeat("x", i+1), "")
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	j, err := svc.Join(as(t, bob), chat.General, "conn-1", sent[56].ID)
	if err != nil || !j.Recovered || len(j.History) != 3 || j.History[0].ID != sent[57].ID || j.History[2].ID != sent[59].ID {
		t.Fatalf("since sent[56]: recovered=%v %d messages, %v", j.Recovered, len(j.History), err)
	}
	if len(j.Members) != 1 || j.Members[0] != (chat.Member{ID: bob.UserID, Name: "Bob"}) {
		t.Fatalf("members %+v", j.Members)
	}
	j, err = svc.Join(as(t, bob), chat.General, "conn-2", plaza.NewID())
	if err != nil || j.Recovered || len(j.History) != chat.HistorySize || j.History[chat.HistorySize-1].ID != sent[59].ID || j.History[0].ID != sent[10].ID {
		t.Fatalf("unknown since: recovered=%v %d messages, %v", j.Recovered, len(j.History), err)
	}
	if j, err = svc.Join(as(t, ann), "nowhere", "conn-3", ""); code(err) != plaza.ENotFound {
		t.Fatalf("unknown room: %v", err)
	}

	// REST paging walks the same history newest first.
	var seen int
	cursor := ""
	for {
		page, err := svc.History(as(t, bob), chat.General, plaza.PageRequest{Limit: 25, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		next := page.NextCursor
		for _, m := range page.Items {
			if m.ID != sent[len(sent)-1-seen].ID {
				t.Fatalf("page item %d: %s", seen, m.ID)
			}
			seen++
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if seen != len(sent) {
		t.Fatalf("paged %d of %d", seen, len(sent))
	}
	if _, err := svc.History(as(t, bob), chat.General, plaza.PageRequest{Limit: 10, Cursor: "garbage!"}); code(err) != plaza.EBadRequest {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, err := svc.History(as(t, bob), chat.General, plaza.PageRequest{Limit: 101}); code(err) != plaza.EBadRequest {
		t.Fatalf("limit 101: %v", err)
	}
}
