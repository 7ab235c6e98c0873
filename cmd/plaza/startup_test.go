package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartupFailuresWriteNothing: a busy port, a weak admin password and a database that
// does not answer each stop `plaza serve` with one line naming the setting and exit code
// 2, before anything is written: the data directory stays empty (no database, no
// jwt.key, no demo products) and nothing is logged as opened.
func TestStartupFailuresWriteNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests, unlike a defer
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := refused.Addr().String()
	refused.Close() // nothing listens there now

	cases := []struct {
		setting string
		env     map[string]string
	}{
		{"PLAZA_HTTP_ADDR", map[string]string{"PLAZA_HTTP_ADDR": busy.Addr().String()}},
		{"PLAZA_ADMIN_PASSWORD", map[string]string{"PLAZA_ADMIN_EMAIL": "ada@example.com", "PLAZA_ADMIN_PASSWORD": "password1"}},
		{"DATABASE_URL", map[string]string{"DATABASE_URL": "postgres://plaza:hunter2@" + nobody + "/plaza?sslmode=disable&connect_timeout=2"}},
	}
	for _, c := range cases {
		t.Run(c.setting, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			env := map[string]string{"PLAZA_DATA_DIR": dir, "PLAZA_HTTP_ADDR": "127.0.0.1:0", "PLAZA_GRPC_ADDR": "127.0.0.1:0"}
			for k, v := range c.env {
				env[k] = v
			}
			var logs strings.Builder
			err := run(context.Background(), []string{"plaza", "serve"}, func(k string) string { return env[k] }, nil, io.Discard, &logs)
			if err == nil || exitCode(err) != 2 || !strings.HasPrefix(err.Error(), c.setting+": ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v (exit %d); want one line naming %s, exit 2", err, exitCode(err), c.setting)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("password leaked: %v", err)
			}
			if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				t.Fatalf("the data directory holds %d entries after a refused start", len(entries))
			}
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var l struct{ Msg string }
				if json.Unmarshal([]byte(line), &l) == nil && (l.Msg == "store opened" || l.Msg == "backends open") {
					t.Fatalf("logged %q before refusing to start", l.Msg)
				}
			}
		})
	}
}

// TestStartupSaysWhereDataLivesAndHowToGetAnAdmin: a fresh start logs the data file's
// absolute path, the listeners, and, with no admin, how to create one.
func TestStartupSaysWhereDataLivesAndHowToGetAnAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, map[string]string{"PLAZA_DATA_DIR": dir})
	var started struct {
		Data      string
		Listeners []string
	}
	hint := false
	// Log lines reach the output in batches (at most 100 ms late): read until both are
	// there, for at most a minute (a hang guard).
	for deadline := time.Now().Add(time.Minute); (started.Data == "" || !hint) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(in.logs.String(), "\n") {
			var l struct{ Msg string }
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			switch {
			case l.Msg == "plaza started":
				_ = json.Unmarshal([]byte(line), &started)
			case strings.HasPrefix(l.Msg, "no admin exists yet"):
				hint = strings.Contains(l.Msg, "PLAZA_ADMIN_EMAIL") && strings.Contains(l.Msg, "plaza user create")
			}
		}
	}
	if want := filepath.Join(dir, "plaza.db"); started.Data != want || !filepath.IsAbs(started.Data) {
		t.Errorf("data logged as %q, want %q", started.Data, want)
	}
	if len(started.Listeners) == 0 || started.Listeners[0] != "http "+in.Addr {
		t.Errorf("listeners logged as %q, want http %s first", started.Listeners, in.Addr)
	}
	if !hint {
		t.Error("no hint on how to get an admin, with none in the database")
	}
}
