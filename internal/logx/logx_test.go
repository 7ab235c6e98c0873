package logx

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLimitBoundsRepeatedWarnings: a burst of one warning writes it once, then once more
// after the interval carrying how many were suppressed; other messages and info lines are
// not held back by it. Record times are set, so no clock is involved.
func TestLimitBoundsRepeatedWarnings(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log := slog.New(Limit(slog.NewJSONHandler(&out, nil), time.Second))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(at time.Duration, level slog.Level, msg string) {
		r := slog.NewRecord(t0.Add(at), level, msg, 0)
		if err := log.Handler().Handle(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2000 {
		write(time.Duration(i)*time.Millisecond/4, slog.LevelWarn, "cache: get failed")
	}
	write(10*time.Millisecond, slog.LevelError, "bus: down")
	write(20*time.Millisecond, slog.LevelInfo, "request")
	write(20*time.Millisecond, slog.LevelInfo, "request")
	write(1500*time.Millisecond, slog.LevelWarn, "cache: get failed")

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	var msgs []string
	for _, m := range lines {
		msgs = append(msgs, m["msg"].(string))
	}
	want := []string{"cache: get failed", "bus: down", "request", "request", "cache: get failed"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("written: %q; want %q", msgs, want)
	}
	if n := lines[4]["suppressed"]; n != float64(1999) {
		t.Fatalf("suppressed = %v, want 1999", n)
	}
	if _, ok := lines[0]["suppressed"]; ok {
		t.Fatal("the first line carries a suppressed count")
	}
}

// TestAccessLogIsNeverLimited: every request's access-log line is written, also at error
// level (a 5xx) and many in one second: it is the only record of that request.
func TestAccessLogIsNeverLimited(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log := slog.New(Limit(slog.NewJSONHandler(&out, nil), time.Second))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		r := slog.NewRecord(t0.Add(time.Duration(i)*time.Millisecond), slog.LevelError, AccessLog, 0)
		if err := log.Handler().Handle(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(out.String(), "\n"); n != 50 {
		t.Fatalf("%d of 50 access-log lines written", n)
	}
}
