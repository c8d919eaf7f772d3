package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"

	"github.com/sessiond/sessiond/internal/fastslog"
)

// logFlags are serve's log settings: --log-format and --log-level.
type logFlags struct {
	format logFormat
	level  logLevel
}

// flags registers --log-format and --log-level on fs, with their defaults
// (text, info).
func (l *logFlags) flags(fs *flag.FlagSet) {
	l.format, l.level = "text", logLevel(slog.LevelInfo)
	fs.Var(&l.format, "log-format", "log format: text (key=value) or json (one object a line)")
	fs.Var(&l.level, "log-level", "least severe log level written: debug, info, warn or error")
}

// logger returns the logger the flags describe, writing to w through a
// logBuffer, and the function that flushes and stops the buffer (call it
// before the process exits). Its handlers are log/slog's, with fastslog's
// fast path for the line of every call.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, func()) {
	opts := &slog.HandlerOptions{Level: slog.Level(l.level)}
	buf := newLogBuffer(w)
	h := fastslog.NewTextHandler(buf, opts)
	if l.format == "json" {
		h = fastslog.NewJSONHandler(buf, opts)
	}
	return slog.New(flushingHandler{h, buf}), buf.Close
}

// logFormat is the value of --log-format.
type logFormat string

func (f *logFormat) String() string { return string(*f) }

func (f *logFormat) Set(v string) error {
	switch v {
	case "text", "json":
		*f = logFormat(v)
		return nil
	}
	return errors.New("the log format must be text or json")
}

// logLevel is the value of --log-level.
type logLevel slog.Level

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func (l *logLevel) String() string { return strings.ToLower(slog.Level(*l).String()) }

func (l *logLevel) Set(v string) error {
	level, ok := logLevels[strings.ToLower(v)]
	if !ok {
		return errors.New("the log level must be debug, info, warn or error")
	}
	*l = logLevel(level)
	return nil
}
