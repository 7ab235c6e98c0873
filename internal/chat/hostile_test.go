package chat_test

import (
	"fmt"
	"strings"
	"testing"

	"plaza/internal/chat"
	"plaza/internal/plaza"
)

// TestEveryMethodRefusesHostileInput calls every exported method of the service with zero
// values and with what an attacker would send through any transport (WebSocket frames,
// REST, later GraphQL and gRPC): each answers a client error with a message, never a panic
// and never an internal error.
func TestEveryMethodRefusesHostileInput(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := as(t, ann)
	huge := strings.Repeat("x", 1<<20)
	bad := []plaza.ErrorCode{plaza.EBadRequest, plaza.EInvalid, plaza.ENotFound}
	cases := []struct {
		name string
		call func() error
		ok   bool // harmless as asked: succeeds
	}{
		{"CreateRoom zero", func() error { _, err := svc.CreateRoom(ctx, "", ""); return err }, false},
		{"CreateRoom hostile", func() error { _, err := svc.CreateRoom(ctx, "../"+huge, "\u202e"+huge); return err }, false},
		{"History unknown room", func() error { _, err := svc.History(ctx, huge, plaza.PageRequest{}); return err }, false},
		{"History negative limit", func() error {
			_, err := svc.History(ctx, chat.General, plaza.PageRequest{Limit: -1})
			return err
		}, false},
		{"History forged cursor", func() error {
			_, err := svc.History(ctx, chat.General, plaza.PageRequest{Cursor: plaza.EncodeCursor(map[string]string{"id": "' OR 1=1"})})
			return err
		}, false},
		{"Send zero", func() error { _, err := svc.Send(ctx, "", "", ""); return err }, false},
		{"Send empty text", func() error { _, err := svc.Send(ctx, chat.General, "", ""); return err }, false},
		{"Send huge text", func() error { _, err := svc.Send(ctx, chat.General, huge, ""); return err }, false},
		{"Send control characters", func() error { _, err := svc.Send(ctx, chat.General, "hi\x00\u202e", ""); return err }, false},
		{"Send huge client ID", func() error { _, err := svc.Send(ctx, chat.General, "hi", huge); return err }, false},
		{"DeleteMessage zero", func() error { return svc.DeleteMessage(ctx, "", "") }, false},
		{"DeleteMessage unknown", func() error { return svc.DeleteMessage(ctx, chat.General, huge) }, false},
		{"Typing unknown room", func() error { return svc.Typing(ctx, huge) }, false},
		{"Join zero", func() error { _, err := svc.Join(ctx, "", "", ""); return err }, false},
		// Leaving what one never joined, and the members of a room nobody is in, are empty
		// answers, not errors.
		{"Leave zero", func() error { return svc.Leave(ctx, "", "") }, true},
		{"Members unknown room", func() error { _, err := svc.Members(ctx, huge); return err }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := callSafely(c.call)
			if c.ok {
				if err != nil {
					t.Fatalf("err = %v; want none", err)
				}
				return
			}
			got := plaza.ErrorCodeOf(err)
			for _, w := range bad {
				if got == w && plaza.AsError(err).Message != "" {
					return
				}
			}
			t.Fatalf("err = %v (code %q); want a client error (one of %v) with a message", err, got, bad)
		})
	}
}

// callSafely turns a panic into an error, so one panicking method fails its own case.
func callSafely(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return f()
}
