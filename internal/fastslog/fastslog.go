// Package fastslog is log/slog's TextHandler and JSONHandler with a fast
// path for the records a server logs on every request: flat records of
// strings, integers, booleans and durations. Such a record is written in
// half the time (BenchmarkHandle) and without allocating; its line is byte for byte the one the standard
// handler writes (FuzzSameLines checks it against log/slog). Every other
// record (a group, a float, a time, any other value, a string that text
// would quote with escapes or JSON would escape, an empty key, a
// ReplaceAttr or AddSource option) and every handler made by WithAttrs or
// WithGroup goes to the standard handler, over the same writer.
//
// The standard handlers spend most of a short record's time checking each
// string rune by rune for what it must quote or escape. The fast path
// takes only strings of printable ASCII without a quote or a backslash,
// which neither format escapes: text quotes them when they hold a space
// or an equals sign (or are empty), by enclosing them in quotes; JSON
// always does.
package fastslog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// NewTextHandler is [slog.NewTextHandler], with the fast path.
func NewTextHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	lw := &lockedWriter{w: w}
	return newHandler(slog.NewTextHandler(lw, opts), lw, opts, false)
}

// NewJSONHandler is [slog.NewJSONHandler], with the fast path.
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	lw := &lockedWriter{w: w}
	return newHandler(slog.NewJSONHandler(lw, opts), lw, opts, true)
}

func newHandler(std slog.Handler, w *lockedWriter, opts *slog.HandlerOptions, json bool) slog.Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	if opts.ReplaceAttr != nil || opts.AddSource {
		return std // every record would leave the fast path
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &handler{std: std, w: w, level: level, json: json}
}

// handler writes the records it can itself, and gives the others to std.
type handler struct {
	std   slog.Handler // over w
	w     *lockedWriter
	level slog.Leveler
	json  bool
}

// lockedWriter serializes the writes of the fast path and of the standard
// handler (which has a lock of its own, not shared with the fast path),
// so that two lines never interleave whatever w is.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// WithAttrs and WithGroup give handlers of the standard kind: the loggers
// they make are not the per-request ones.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.std.WithAttrs(attrs) }
func (h *handler) WithGroup(name string) slog.Handler       { return h.std.WithGroup(name) }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	p := bufPool.Get().(*[]byte)
	b, ok := h.append((*p)[:0], r)
	var err error
	if ok {
		_, err = h.w.Write(b)
	} else {
		err = h.std.Handle(ctx, r)
	}
	if cap(b) <= 64<<10 { // keep an odd large line out of the pool
		*p = b
		bufPool.Put(p)
	}
	return err
}

// append appends r's line to b, or reports that it is not the fast path's
// to write: then std writes it.
func (h *handler) append(b []byte, r slog.Record) ([]byte, bool) {
	ok := true
	if h.json {
		b = append(b, '{')
	}
	sep := ""
	if !r.Time.IsZero() {
		b, _ = h.key(b, sep, slog.TimeKey, true)
		b, ok = h.time(b, r.Time.Round(0))
		sep = h.sep()
	}
	b, _ = h.key(b, sep, slog.LevelKey, true)
	b, ok = h.str(b, r.Level.String(), ok)
	sep = h.sep()
	b, _ = h.key(b, sep, slog.MessageKey, true)
	b, ok = h.str(b, r.Message, ok)
	r.Attrs(func(a slog.Attr) bool {
		b, ok = h.key(b, sep, a.Key, ok)
		b, ok = h.value(b, a.Value, ok)
		return ok
	})
	if h.json {
		b = append(b, '}')
	}
	return append(b, '\n'), ok
}

func (h *handler) sep() string {
	if h.json {
		return ","
	}
	return " "
}

// key appends sep and the key k of a value, unless ok is false already
// (then it does nothing: the record is std's).
func (h *handler) key(b []byte, sep, k string, ok bool) ([]byte, bool) {
	if !ok || k == "" { // std elides or writes empty keys its way
		return b, false
	}
	b = append(b, sep...)
	b, good := h.str(b, k, true)
	if h.json {
		return append(b, ':'), good
	}
	return append(b, '='), good
}

// Classes of the bytes of a string: plain (printable ASCII without a quote
// or a backslash, which neither format escapes), plain but quoted in text
// (a space, an '='), or neither (anything else: std writes the record).
const (
	plain  = 0
	quoted = 1 << iota
	other
)

var class = func() (c [256]uint8) {
	for i := range c {
		switch {
		case i == ' ' || i == '=':
			c[i] = quoted
		case i < 0x20 || i > 0x7e || i == '"' || i == '\\':
			c[i] = other
		}
	}
	return c
}()

// str appends s as std does, if ok and s is plain: in JSON quoted; in text
// as it is, or quoted when it is empty or holds a space or an '=' (which is
// what strconv.Quote does to a plain string).
func (h *handler) str(b []byte, s string, ok bool) ([]byte, bool) {
	if !ok {
		return b, false
	}
	var seen uint8
	for i := 0; i < len(s); i++ {
		seen |= class[s[i]]
	}
	switch {
	case seen&other != 0:
		return b, false
	case h.json || seen&quoted != 0 || s == "":
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"'), true
	}
	return append(b, s...), true
}

func (h *handler) value(b []byte, v slog.Value, ok bool) ([]byte, bool) {
	if !ok {
		return b, false
	}
	switch v.Kind() {
	case slog.KindString:
		return h.str(b, v.String(), true)
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		if h.json {
			return strconv.AppendInt(b, int64(v.Duration()), 10), true
		}
		return append(b, v.Duration().String()...), true
	}
	return b, false // a float, a time, a group, any other value
}

// time appends the record's time: in text to the millisecond, in JSON to
// the nanosecond, as std does; a JSON time outside the years 0 to 9999 is
// std's (it writes an error too).
func (h *handler) time(b []byte, t time.Time) ([]byte, bool) {
	if h.json {
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false
		}
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), true
	}
	// slog's appendRFC3339Millis: RFC3339Nano of the time truncated to the
	// millisecond plus a tenth of one, so that four digits follow the
	// point, the fourth then dropped.
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...), true
}
