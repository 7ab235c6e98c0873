package logbuf_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"plaza/internal/logbuf"
)

// countingWriter counts the writes that reach it (each would be a system call).
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) state() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes
}

// TestLinesAreBatchedAndFlushed: a thousand lines cost a handful of writes; nothing is
// held longer than the interval; Close writes the rest.
func TestLinesAreBatchedAndFlushed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &countingWriter{}
		w := logbuf.New(out, 64<<10, logbuf.FlushInterval)
		line := strings.Repeat("x", 99) + "\n"
		for range 1000 {
			if _, err := w.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := out.state(); len(got) >= 1000*len(line) {
			t.Fatal("every line was written at once; nothing was buffered")
		}
		time.Sleep(logbuf.FlushInterval + time.Millisecond)
		synctest.Wait()
		got, writes := out.state()
		if len(got) != 1000*len(line) {
			t.Fatalf("after one interval %d of %d bytes are written", len(got), 1000*len(line))
		}
		if writes > 3 {
			t.Fatalf("1000 lines took %d writes", writes)
		}
		if _, err := w.Write([]byte("last\n")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := out.state(); !strings.HasSuffix(got, "last\n") {
			t.Fatal("Close did not write the buffered line")
		}
	})
}

// BenchmarkAccessLogLine is one access-log line (the JSON handler Plaza uses) written to a
// log file: straight to the file, as before, and through the buffer.
func BenchmarkAccessLogLine(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "buffered"}[buffered]
		b.Run(name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var w io.Writer = f
			if buffered {
				lw := logbuf.New(f, 64<<10, logbuf.FlushInterval)
				defer lw.Close()
				w = lw
			}
			log := slog.New(slog.NewJSONHandler(w, nil))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(ctx, slog.LevelInfo, "request",
					slog.String("method", "GET"), slog.String("route", "GET /api/users/me"), slog.String("path", "/api/users/me"),
					slog.Int("status", 200), slog.Int64("bytes", 180), slog.Duration("duration", 120*time.Microsecond),
					slog.String("request_id", "0123456789abcdef0123456789abcdef"), slog.String("user_id", "01a22a1f-89a8-700f-9077-67689d86bad0"),
					slog.String("client_ip", "127.0.0.1"))
			}
		})
	}
}
