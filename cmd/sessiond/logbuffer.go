package main

// This file batches the server's log lines into fewer writes.

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logFlushInterval is the longest an Info or Debug line waits in the
// buffer before it is written.
const logFlushInterval = 100 * time.Millisecond

// logBuffer collects log lines and writes them to w in batches: when
// its 64 KiB fill, every logFlushInterval, and at once after a line at
// Warn or above (see flushingHandler) and on Close. One line per
// JSON-RPC call written straight to stderr costs a write(2) each, about a
// tenth of a core under load; batched, a few a second. What a SIGKILL can
// lose is the last interval's Info lines, never a warning or an error.
type logBuffer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	direct bool // after Close: every line written at once
	stop   chan struct{}
	done   chan struct{}
}

func newLogBuffer(w io.Writer) *logBuffer {
	b := &logBuffer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

func (b *logBuffer) run() {
	defer close(b.done)
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write buffers p: a handler writes one whole line per call.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.w.Write(p)
	if err == nil && b.direct {
		err = b.w.Flush()
	}
	return n, err
}

// Flush writes what is buffered.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w.Buffered() > 0 {
		b.w.Flush()
	}
}

// Close stops the periodic flush and writes what is left; lines logged
// afterwards are written at once.
func (b *logBuffer) Close() {
	close(b.stop)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	b.w.Flush()
	b.direct = true
}

// flushingHandler flushes its logBuffer after every record at Warn or
// above, so that warnings and errors are never held back.
type flushingHandler struct {
	slog.Handler
	buf *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.buf.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.buf}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.buf}
}
