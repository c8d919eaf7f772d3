package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncWriter is a destination safe for the buffer's flushing goroutine.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Warnings and errors are written before Handle returns; Info lines within
// the flush interval; everything on close, and at once after it.
func TestLogBuffer(t *testing.T) {
	var out syncWriter
	l := logFlags{format: "text", level: logLevel(slog.LevelInfo)}
	log, flush := l.logger(&out)

	log.Warn("disk nearly full")
	if !strings.Contains(out.String(), "disk nearly full") {
		t.Fatalf("a warning was held back: %q", out.String())
	}
	log.With("component", "badger").Error("commit failed")
	if !strings.Contains(out.String(), "commit failed") {
		t.Fatalf("an error of a derived logger was held back: %q", out.String())
	}
	log.Info("rpc call", "method", "session.verify_session_token")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "rpc call"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an info line was not written within 10 s")
		}
	}
	log.Info("last words")
	flush()
	if !strings.Contains(out.String(), "last words") {
		t.Fatalf("close did not write the buffered line: %q", out.String())
	}
	log.Info("after close")
	if !strings.Contains(out.String(), "after close") {
		t.Fatalf("a line after close was held back: %q", out.String())
	}
}
