package fastslog_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/fastslog"
)

// formats are the handlers under test, each beside log/slog's own.
var formats = []struct {
	name      string
	fast, std func(io.Writer, *slog.HandlerOptions) slog.Handler
}{
	{"text", fastslog.NewTextHandler, func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, o) }},
	{"json", fastslog.NewJSONHandler, func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewJSONHandler(w, o) }},
}

// lines logs with log through a fast handler and through log/slog's, and
// returns what each wrote.
func lines(t *testing.T, opts *slog.HandlerOptions, log func(*slog.Logger)) (fast, std [2]string) {
	t.Helper()
	for i, f := range formats {
		var a, b bytes.Buffer
		log(slog.New(f.fast(&a, opts)))
		log(slog.New(f.std(&b, opts)))
		fast[i], std[i] = a.String(), b.String()
	}
	return fast, std
}

func same(t *testing.T, opts *slog.HandlerOptions, log func(*slog.Logger)) {
	t.Helper()
	fast, std := lines(t, opts, log)
	for i, f := range formats {
		if fast[i] != std[i] {
			t.Errorf("%s:\n fast %q\n std  %q", f.name, fast[i], std[i])
		}
	}
}

// FuzzSameLines: whatever a record holds, a fast handler writes the line
// log/slog's handler of the same format writes, on the fast path or off it.
func FuzzSameLines(f *testing.F) {
	f.Add("rpc call", 0, "method", "session.verify_session_token", "code", "ok", int64(1234567), uint64(7), true, int64(1796151635123456789), uint8(0))
	f.Add("rpc call", 4, "request_id", "a=b c", "client", "", int64(-1), uint64(0), false, int64(0), uint8(0xff))
	f.Add("é\n\"\\", -4, "", "\x00\u2028", "k k", "v=v", int64(1<<62), uint64(1<<63), false, int64(-1), uint8(0x5a))
	f.Add("x", 2, "t", "y", "z", "w", int64(0), uint64(0), true, int64(9e18), uint8(0x33))
	f.Fuzz(func(t *testing.T, msg string, level int, k1, s1, k2, s2 string, i int64, u uint64, b bool, nanos int64, kinds uint8) {
		var tm time.Time
		if kinds&1 == 0 {
			tm = time.Unix(0, nanos).In(time.FixedZone("z", int(nanos%50000)))
		}
		// Each two bits of kinds choose the value of one more attribute:
		// the fast path's kinds, and some it leaves to the standard handler.
		values := []slog.Value{
			slog.Int64Value(i), slog.Uint64Value(u), slog.BoolValue(b), slog.DurationValue(time.Duration(i)),
			slog.StringValue(s2), slog.Float64Value(float64(i) / 3), slog.TimeValue(tm), slog.AnyValue(errors.New(s1)),
		}
		attrs := []slog.Attr{slog.String(k1, s1)}
		for j := 1; j < 8; j += 2 {
			if kinds>>j&1 == 1 {
				attrs = append(attrs, slog.Attr{Key: k2, Value: values[(int(kinds)>>(j-1)+j)%len(values)]})
			}
		}
		same(t, nil, func(l *slog.Logger) {
			r := slog.NewRecord(tm, slog.Level(level), msg, 0)
			r.AddAttrs(attrs...)
			l.Handler().Handle(context.Background(), r)
		})
	})
}

// What leaves the fast path is written by log/slog's handler all the same:
// groups, handlers made by WithAttrs and WithGroup, strings that need
// escapes, levels below the handler's, ReplaceAttr, AddSource.
func TestSameOffTheFastPath(t *testing.T) {
	now := time.Date(2026, 12, 1, 19, 30, 0, 123456789, time.UTC)
	record := func(level slog.Level, msg string, attrs ...slog.Attr) slog.Record {
		r := slog.NewRecord(now, level, msg, 0)
		r.AddAttrs(attrs...)
		return r
	}
	log := func(l *slog.Logger) {
		ctx := context.Background()
		h := l.Handler()
		for _, r := range []slog.Record{
			record(slog.LevelInfo, "rpc call", slog.String("method", "session.open_session"), slog.Duration("duration", 1500*time.Microsecond)),
			record(slog.LevelInfo, "group attr", slog.Group("g", slog.Int("a", 1))),
			record(slog.LevelWarn, "quoted", slog.String("path", `C:\dir "x"`), slog.String("empty", "")),
			record(slog.LevelInfo, "float", slog.Float64("f", 0.1)),
		} {
			if h.Enabled(ctx, r.Level) {
				h.Handle(ctx, r)
			}
		}
		h.WithAttrs([]slog.Attr{slog.String("component", "store")}).Handle(ctx, record(slog.LevelInfo, "opened", slog.Int("entries", 3)))
		h.WithGroup("g").Handle(ctx, record(slog.LevelInfo, "grouped", slog.Int("a", 1)))
	}
	fixed := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Time(slog.TimeKey, now)
		}
		return a
	}
	for _, opts := range []*slog.HandlerOptions{
		nil,
		{Level: slog.LevelWarn},
		{ReplaceAttr: fixed},
		{AddSource: true},
	} {
		same(t, opts, log)
	}
}

// The fast path writes one line of the record's attributes with its own
// clock: checked against log/slog with the record's time fixed.
func TestSameWithTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 12, 1, 19, 30, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 19, 30, 0, 999999999, time.FixedZone("x", -3*3600-1800)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		{},
	} {
		same(t, &slog.HandlerOptions{Level: slog.LevelDebug}, func(l *slog.Logger) {
			r := slog.NewRecord(tm, slog.LevelInfo, "rpc call", 0)
			r.AddAttrs(slog.String("method", "session.close_session"), slog.String("code", "-32602"),
				slog.Duration("duration", 12345*time.Nanosecond), slog.String("request_id", "0b6b2f0e-8e1c-4c4b-9d3e-6b1f7c2a1d00"),
				slog.String("client", ""), slog.String("jti", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"), slog.Bool("notification", true))
			l.Handler().Handle(context.Background(), r)
		})
	}
}

// Levels: Enabled follows HandlerOptions.Level, Info when nil.
func TestEnabled(t *testing.T) {
	for _, f := range formats {
		for _, c := range []struct {
			opts  *slog.HandlerOptions
			level slog.Level
			want  bool
		}{
			{nil, slog.LevelInfo, true},
			{nil, slog.LevelDebug, false},
			{&slog.HandlerOptions{Level: slog.LevelWarn}, slog.LevelInfo, false},
			{&slog.HandlerOptions{Level: slog.LevelWarn}, slog.LevelError, true},
		} {
			if got := f.fast(io.Discard, c.opts).Enabled(context.Background(), c.level); got != c.want {
				t.Errorf("%s: Enabled(%v) with %+v = %v, want %v", f.name, c.level, c.opts, got, c.want)
			}
		}
	}
}

// Lines written from many goroutines, on the fast path and off it, never
// interleave, whatever the writer.
func TestConcurrentLines(t *testing.T) {
	for _, f := range formats {
		var buf bytes.Buffer // not safe for concurrent writes by itself
		l := slog.New(f.fast(&buf, nil))
		done := make(chan bool)
		for g := range 8 {
			go func() {
				for range 200 {
					if g%2 == 0 {
						l.Info("fast", "n", g)
					} else {
						l.Info("slow", "f", 1.5)
					}
				}
				done <- true
			}()
		}
		for range 8 {
			<-done
		}
		got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if len(got) != 1600 {
			t.Fatalf("%s: %d lines, want 1600", f.name, len(got))
		}
		for _, line := range got {
			if !strings.Contains(line, "fast") && !strings.Contains(line, "slow") || strings.Count(line, "msg") != 1 {
				t.Fatalf("%s: line %q is not one record", f.name, line)
			}
		}
	}
}

// BenchmarkHandle is the line a server logs per request, through each
// handler: the Record and its line.
func BenchmarkHandle(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("method", "session.verify_session_token"), slog.String("code", "ok"),
		slog.Duration("duration", 12345*time.Nanosecond), slog.String("client", "billing"),
		slog.String("jti", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
	}
	for _, f := range formats {
		for name, h := range map[string]func(io.Writer, *slog.HandlerOptions) slog.Handler{"std": f.std, "fast": f.fast} {
			b.Run(f.name+"/"+name, func(b *testing.B) {
				h := h(io.Discard, nil)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					// As the server logs the line: a Record without the
					// caller's pc, which Logger's methods pay runtime.Callers
					// for.
					r := slog.NewRecord(time.Now(), slog.LevelInfo, "rpc call", 0)
					r.AddAttrs(attrs...)
					h.Handle(ctx, r)
				}
			})
		}
	}
}
