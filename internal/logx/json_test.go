package logx

import (
	"bytes"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonPair writes a record with NewJSONHandler and with slog's own JSON handler.
func jsonPair(t testing.TB, r slog.Record, opts *slog.HandlerOptions) (ours, slogs string) {
	var a, b bytes.Buffer
	if err := NewJSONHandler(&a, opts).Handle(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if err := slog.NewJSONHandler(&b, opts).Handle(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	return a.String(), b.String()
}

// TestJSONHandlerWritesSlogsBytes: whatever the record (plain or hostile strings, every
// value kind, levels, odd times), NewJSONHandler writes byte for byte what
// slog.NewJSONHandler writes, shortcut or not.
func TestJSONHandlerWritesSlogsBytes(t *testing.T) {
	t.Parallel()
	strs := []string{"", "GET", "/api/products/01a2-b", "127.0.0.1", "a b<c>&d", `quote"d`, `back\slash`,
		"new\nline", "tab\t", "\x00\x1f\x7f", "ünïcode", "\u2028\u2029", "bad\xffutf8", "emoji 🛒", "{}[],:"}
	vals := func(rng *rand.Rand) slog.Value {
		switch rng.IntN(9) {
		case 0:
			return slog.Int64Value(rng.Int64() - rng.Int64())
		case 1:
			return slog.Uint64Value(rng.Uint64())
		case 2:
			return slog.BoolValue(rng.IntN(2) == 0)
		case 3:
			return slog.DurationValue(time.Duration(rng.Int64N(1e12)))
		case 4:
			return slog.Float64Value(rng.Float64() * 1e6)
		case 5:
			return slog.TimeValue(time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).UTC())
		case 6:
			return slog.AnyValue(map[string]int{"n": rng.IntN(9)})
		case 7:
			return slog.GroupValue(slog.String("k", strs[rng.IntN(len(strs))]))
		default:
			return slog.StringValue(strs[rng.IntN(len(strs))])
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	shortcuts := 0
	for i := range 5000 {
		at := time.Date(2026, 11, 30, 6, 0, 0, rng.IntN(1e9), time.UTC)
		switch i % 50 {
		case 0:
			at = time.Time{}
		case 1:
			at = at.In(time.FixedZone("x", 5*3600+1800))
		case 2:
			at = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		msg := "request"
		if i%7 == 0 {
			msg = strs[rng.IntN(len(strs))]
		}
		level := levels[rng.IntN(len(levels))]
		r := slog.NewRecord(at, level, msg, 0)
		plainOnly := i%3 != 0
		var attrs []slog.Attr
		for range rng.IntN(12) {
			key := []string{"method", "path", "status", "duration", "user_id", ""}[rng.IntN(6)]
			v := vals(rng)
			if plainOnly {
				key = "k" + strings.Repeat("x", rng.IntN(3))
				v = []slog.Value{slog.StringValue("GET"), slog.Int64Value(rng.Int64N(600)),
					slog.DurationValue(time.Duration(rng.Int64N(1e9))), slog.BoolValue(true), slog.Uint64Value(7)}[rng.IntN(5)]
			}
			r.AddAttrs(slog.Attr{Key: key, Value: v})
			attrs = append(attrs, slog.Attr{Key: key, Value: v})
		}
		if _, ok := appendLine(nil, r); ok {
			shortcuts++
		}
		ours, slogs := jsonPair(t, r, opts)
		if ours != slogs {
			t.Fatalf("record %d:\nours %q\nslog %q", i, ours, slogs)
		}
		// The same attributes as an access line, which skips the record when it can.
		var a, b bytes.Buffer
		Access(t.Context(), slog.New(Limit(NewJSONHandler(&a, opts), time.Second)), at, level, attrs...)
		ar := slog.NewRecord(at, level, AccessLog, 0)
		ar.AddAttrs(attrs...)
		if err := slog.NewJSONHandler(&b, opts).Handle(t.Context(), ar); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Fatalf("access line %d:\nours %q\nslog %q", i, a.String(), b.String())
		}
	}
	if shortcuts < 1000 {
		t.Fatalf("the shortcut wrote only %d of 5000 records: the test no longer exercises it", shortcuts)
	}
}

// TestJSONHandlerKeepsLevelsAndDerivedHandlers: the level threshold holds, and handlers
// from WithAttrs and WithGroup write what slog's would.
func TestJSONHandlerKeepsLevelsAndDerivedHandlers(t *testing.T) {
	t.Parallel()
	var a, b bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelWarn}
	ours := slog.New(NewJSONHandler(&a, opts))
	theirs := slog.New(slog.NewJSONHandler(&b, opts))
	for _, l := range []*slog.Logger{ours, theirs} {
		l.Info("request", "method", "GET") // below the level: not written
		l.Warn("cache: get failed", "err", "dial tcp: refused")
		l.With("component", "bus").WithGroup("g").Error("down", "n", 3)
	}
	strip := func(s string) string { // the times differ
		var out []string
		for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
			_, rest, _ := strings.Cut(l, `","level"`)
			out = append(out, rest)
		}
		return strings.Join(out, "\n")
	}
	if got, want := strip(a.String()), strip(b.String()); got != want || strings.Count(got, "\n") != 1 {
		t.Fatalf("ours:\n%s\nslog's:\n%s", got, want)
	}
}

// TestJSONHandlerWritesWholeLines: concurrent records through the shortcut and through
// slog's handler never interleave within a line, even on a writer without a lock of its own.
func TestJSONHandlerWritesWholeLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log := slog.New(NewJSONHandler(&out, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if g%2 == 0 {
					log.Info("request", "method", "GET", "status", i)
				} else {
					log.Info("request", "path", "/with \"quotes\"", "status", i)
				}
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"time":"`) || !strings.HasSuffix(l, "}") || strings.Count(l, `"msg"`) != 1 {
			t.Fatalf("broken line %q", l)
		}
	}
}

// BenchmarkAccessLine is an access-log line through Access, and as a record through
// NewJSONHandler and through slog's own JSON handler.
func BenchmarkAccessLine(b *testing.B) {
	attrs := []slog.Attr{slog.String("method", "GET"), slog.String("route", "/api/products/{id}"),
		slog.String("path", "/api/products/01a22b15-7150-7def-b831-916554ae19b2"), slog.Int("status", 200),
		slog.Int64("bytes", 457), slog.Duration("duration", 20057*time.Nanosecond),
		slog.String("request_id", "eb5a856ceee95bee15811cb6bf019c13"), slog.String("user_id", ""),
		slog.String("client_ip", "127.0.0.1")}
	now := time.Now()
	r := slog.NewRecord(now, slog.LevelInfo, AccessLog, 0)
	r.AddAttrs(attrs...)
	b.Run("Access", func(b *testing.B) { // as the transports write it: no record when it can
		log := slog.New(Limit(NewJSONHandler(io.Discard, nil), time.Second))
		b.ReportAllocs()
		for b.Loop() {
			Access(b.Context(), log, now, slog.LevelInfo, attrs...)
		}
	})
	for name, h := range map[string]slog.Handler{
		"logx": NewJSONHandler(io.Discard, nil), "slog": slog.NewJSONHandler(io.Discard, nil)} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = h.Handle(b.Context(), r)
			}
		})
	}
}
