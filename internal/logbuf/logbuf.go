// Package logbuf buffers log output so that a busy server does not pay one write system
// call per log line (the access log writes one line per request): lines collect in memory
// and are written in batches, at the latest FlushInterval after they were logged, and
// everything is written by Close, so a clean exit loses nothing.
package logbuf

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// FlushInterval bounds how long a line waits in the buffer: short enough that someone
// tailing the log sees it at once, long enough to batch a busy second's lines.
const FlushInterval = 100 * time.Millisecond

// Writer is a buffered, concurrency-safe io.Writer that flushes itself on an interval.
type Writer struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	err  error // the first write error of the underlying writer, reported by Close
	stop chan struct{}
	done chan struct{}
}

// New buffers w with size bytes, flushing every interval until Close.
func New(w io.Writer, size int, interval time.Duration) *Writer {
	lw := &Writer{buf: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go lw.flushEvery(interval)
	return lw
}

// Write buffers p; a line never waits longer than the flush interval. A full buffer is
// written at once.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.buf.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// Close stops the interval flushes and writes what is buffered. Writes after Close still
// land in the buffer but are only written by another Flush.
func (w *Writer) Close() error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
		<-w.done
	}
	return w.Flush()
}

func (w *Writer) flushEvery(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			_ = w.Flush()
		}
	}
}
