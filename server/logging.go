package server

// This file is the request log: every JSON-RPC request gets a request id
// (the caller's X-Request-Id when it is sane, else a new one, echoed in the
// reply's X-Request-Id), every log line written with the request's context
// carries it (contextHandler), and every call gets one line at Info
// ("rpc call": method, code, duration, client, jti). The same observers
// feed the metrics.

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/clients"

	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// RequestIDHeader is the header that carries a request's id, both ways.
const RequestIDHeader = "X-Request-Id"

// maxRequestID is the longest X-Request-Id taken from a caller.
const maxRequestID = 128

// requestInfo is what the log knows of one HTTP request. It is made by
// withRequestID and lives in the request's context. id never changes;
// jti is written and read by the observers, which run one after
// the other on the request's goroutine (rpc runs a batch's calls in order).
type requestInfo struct {
	id  string
	jti uuid.UUID // of the call being answered, from the session observer
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// saneRequestID reports whether a caller's X-Request-Id can go into the log
// and back into the reply as it is: 1 to 128 bytes of letters, digits and
// - _ . : / + = @ (UUIDs, trace ids, base64).
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// withRequestID gives each request an id, in its context and in the
// reply's X-Request-Id: the caller's, when sane, else a new random one
// (a version 4 UUID).
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(RequestIDHeader, id)
		info := &requestInfo{id: id}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
	})
}

// contextHandler adds the request id to every record logged with a
// request's context, so that an error a method logs can be matched with
// its "rpc call" line.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if info := infoFrom(ctx); info != nil {
		r.AddAttrs(slog.String("request_id", info.id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// observeSession is the session methods' observer: it counts token checks
// and notes the token's id for the call's log line.
func (s *Server) observeSession(ctx context.Context, e session.Event) {
	s.metrics.checked(e)
	if info := infoFrom(ctx); info != nil {
		info.jti = e.ID
	}
}

// observeCall is the JSON-RPC handler's observer: it counts the call and
// logs it at Info. The line holds the method (from the table, else
// "other"), the code ("ok" or the JSON-RPC error code), the duration, the
// request id, the client and the jti of the token issued or checked; never
// a token, a subject, a secret or a key.
func (s *Server) observeCall(ctx context.Context, o rpc.Outcome) {
	s.metrics.call(o)
	info := infoFrom(ctx)
	var client, jti string
	if c, ok := clients.FromContext(ctx); ok {
		client = c.Name
	}
	if info != nil {
		if info.jti != uuid.Nil {
			jti = info.jti.String()
		}
		info.jti = uuid.Nil // the next call of a batch starts afresh
	}
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	method := o.Method
	if method == "" {
		method = otherLabel
	}
	code := "ok"
	if o.Code != 0 {
		code = strconv.Itoa(o.Code)
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", code),
		slog.Duration("duration", o.Duration),
		slog.String("client", client), // "" when callers need no credentials
	}
	if jti != "" {
		attrs = append(attrs, slog.String("jti", jti))
	}
	if o.Notification {
		attrs = append(attrs, slog.Bool("notification", true))
	}
	// A Record of its own rather than LogAttrs, which would spend
	// runtime.Callers on a source position nobody logs.
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "rpc call", 0)
	r.AddAttrs(attrs...)
	s.log.Handler().Handle(ctx, r)
}
