package rpc

// This file is the JSON-RPC 2.0 handler: the error codes and the Error
// type, the method table (Method), the HTTP side of ServeHTTP (methods,
// Content-Type, body limits), the dispatch of single requests and batches,
// and the one table that maps a method's errors to JSON-RPC error objects
// (wireError). It knows nothing of sessions. Decoding is in decode.go,
// encoding in encode.go, the trailing-comma leniency in commas.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// JSON-RPC 2.0 error codes, see https://www.jsonrpc.org/specification#error_object.
const (
	CodeParseError     = -32700 // the body is not valid JSON
	CodeInvalidRequest = -32600 // the JSON is not a valid Request object
	CodeMethodNotFound = -32601 // the method is not in the table
	CodeInvalidParams  = -32602 // the params do not fit the method
	CodeInternalError  = -32603 // anything else; details go to the log, never to the client
)

const (
	defaultMaxBodySize = 1 << 20
	defaultMaxBatch    = 100

	// maxPooledBuffer keeps one huge response from pinning memory in the pool.
	maxPooledBuffer = 64 << 10
)

// Error is a JSON-RPC error object. A [Method]'s Call returns one (possibly
// wrapped) to choose the code and the message the client sees; any other error
// reaches the client as CodeInternalError "internal error".
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// Error returns the code and the message, e.g. "rpc error -32602: missing token".
func (e *Error) Error() string {
	return "rpc error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// InvalidParams returns an *Error with CodeInvalidParams and the formatted message.
func InvalidParams(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}

// Method is one entry of the method table.
type Method struct {
	// Params names the parameters in positional order. Requests may pass
	// params by name (an object; an unknown name is an invalid-params error
	// that lists the allowed names) or by position (an array no longer than
	// Params; missing trailing ones count as absent).
	Params []string

	// Call runs the method with the request's context. A returned error that
	// is (errors.As) an *Error is sent to the client as is; any other error is
	// logged and the client gets "internal error". A panic is recovered,
	// logged with its stack and answered as an internal error.
	Call func(ctx context.Context, p Params) (result any, err error)
}

// HandlerOptions configure a [Handler]. A zero field means the documented default.
type HandlerOptions struct {
	Logger      *slog.Logger // nil: discard
	MaxBodySize int64        // 0 = 1 MiB
	MaxBatch    int          // 0 = 100 requests in one batch

	// Authorize, when not nil, is asked before each call of a method in
	// the table, with the request's context (where an authenticating
	// middleware keeps the caller): a non-nil *Error is that call's answer
	// and the method does not run (a refused notification is neither run
	// nor answered). Other calls of a batch are unaffected. It is asked
	// before the params are checked, and never for an unknown method.
	Authorize func(ctx context.Context, method string) *Error
}

// Handler serves JSON-RPC 2.0 over HTTP POST. It implements [http.Handler]
// and never listens itself; create one with [NewHandler].
//
// ServeHTTP answers every path it is given, so the caller chooses where to
// mount it (usually "/"). Only POST carries JSON-RPC; other HTTP methods get
// 405 with "Allow: POST". Every JSON-RPC reply, errors included, is HTTP 200
// with Content-Type application/json, except:
//   - 204 and no body when nothing is to be answered (notifications only);
//   - 413 when the body exceeds MaxBodySize;
//   - 415 for a Content-Type that cannot be JSON;
//   - 400 when the body cannot be read (the client went away).
//
// The error bodies of 400, 405, 413 and 415 are JSON-RPC error objects too
// (code CodeInvalidRequest, id null).
//
// Batches run sequentially, in order, and their responses keep the order of
// the requests. Notifications run before the HTTP reply is sent. An invalid
// Request object is answered with id null, even when it has an id or none.
// Method names that begin with "rpc." get no special treatment: they are
// served only if they are in the table.
//
// Two leniencies, both because users paste examples: a trailing comma before
// '}' or ']' is accepted (the API documentation has one), and so are requests
// whose Content-Type is missing, text/plain or application/x-www-form-urlencoded
// (what `curl -d` sends). Nothing else that is not JSON is accepted.
type Handler struct {
	methods     map[string]Method
	logger      *slog.Logger
	maxBodySize int64
	maxBatch    int
	authorize   func(context.Context, string) *Error
	buffers     sync.Pool // of *outBuf
}

// NewHandler returns a Handler serving the given methods; it copies the table.
// It panics if a method has a nil Call or declares a parameter name twice,
// since both are programming errors.
func NewHandler(methods map[string]Method, opts HandlerOptions) *Handler {
	h := &Handler{
		methods:     make(map[string]Method, len(methods)),
		logger:      opts.Logger,
		maxBodySize: opts.MaxBodySize,
		maxBatch:    opts.MaxBatch,
		authorize:   opts.Authorize,
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.maxBodySize <= 0 {
		h.maxBodySize = defaultMaxBodySize
	}
	if h.maxBatch <= 0 {
		h.maxBatch = defaultMaxBatch
	}
	for name, m := range methods {
		if m.Call == nil {
			panic(fmt.Sprintf("rpc: method %q has a nil Call", name))
		}
		for i, p := range m.Params {
			for _, q := range m.Params[:i] {
				if p == q {
					panic(fmt.Sprintf("rpc: method %q declares parameter %q twice", name, p))
				}
			}
		}
		m.Params = append([]string(nil), m.Params...)
		h.methods[name] = m
	}
	h.buffers.New = func() any {
		b := new(outBuf)
		b.enc = json.NewEncoder(&b.Buffer)
		return b
	}
	return h
}

// ServeHTTP implements [http.Handler].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.replyHTTPError(w, http.StatusMethodNotAllowed, "method not allowed, use POST")
		return
	}
	if ct := r.Header.Get("Content-Type"); !jsonContentType(ct) {
		h.replyHTTPError(w, http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported content type %q, use application/json", ct))
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.replyHTTPError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body too large, the limit is %d bytes", tooBig.Limit))
			return
		}
		h.logger.DebugContext(r.Context(), "rpc: read request body", "err", err)
		h.replyHTTPError(w, http.StatusBadRequest, "cannot read request body")
		return
	}

	out := h.getBuf()
	defer h.putBuf(out)
	h.serve(r.Context(), body, out)
	if out.Len() == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out.Bytes())
}

// readBody returns the whole request body, or an *http.MaxBytesError when it
// exceeds the limit. The body gets its own allocation, never pooled, so that
// Params and the RawMessages they hand out stay valid.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	switch n := r.ContentLength; {
	case n > h.maxBodySize:
		// Refuse without reading; the rest of the body is not worth draining.
		w.Header().Set("Connection", "close")
		return nil, &http.MaxBytesError{Limit: h.maxBodySize}
	case n >= 0:
		// The common case (curl and every HTTP client set Content-Length).
		// net/http never reads past Content-Length.
		return readAnnounced(r.Body, int(n))
	default:
		return io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBodySize))
	}
}

// initialBodyBuffer is the most readAnnounced allocates before a body's
// bytes arrive.
const initialBodyBuffer = 4 << 10

// readAnnounced reads a body of exactly n bytes. Memory follows the bytes
// received, not the bytes announced: the buffer starts at up to
// initialBodyBuffer (one exact allocation for a typical request) and
// doubles, never beyond n, as the body arrives. So a client that announces
// 1 MiB and sends nothing holds 4 KiB, not 1 MiB.
func readAnnounced(body io.Reader, n int) ([]byte, error) {
	b := make([]byte, 0, min(n, initialBodyBuffer))
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(cap(b), n-cap(b)))[:len(b)]
		}
		m, err := body.Read(b[len(b):min(cap(b), n)])
		b = b[:len(b)+m]
		switch {
		case err == io.EOF && len(b) < n:
			return b, io.ErrUnexpectedEOF
		case err == io.EOF:
			return b, nil
		case err != nil:
			return b, err
		}
	}
	return b, nil
}

// jsonContentType reports whether a request with this Content-Type is decoded
// as JSON. Besides application/json and any "+json" type (and the
// application/json-rpc and application/jsonrequest of the JSON-RPC over HTTP
// drafts), it is lenient on purpose: a missing Content-Type, text/plain and
// application/x-www-form-urlencoded are accepted too, because the last is what
// `curl -d` sends and users paste curl commands from the API documentation.
// The body must still be JSON.
func jsonContentType(ct string) bool {
	if ct == "" {
		return true
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	for _, ok := range [...]string{
		"application/json",
		"application/json-rpc",
		"application/jsonrequest",
		"text/plain",
		"application/x-www-form-urlencoded",
	} {
		if strings.EqualFold(ct, ok) {
			return true
		}
	}
	return len(ct) > len("+json") && strings.EqualFold(ct[len(ct)-len("+json"):], "+json")
}

// replyHTTPError answers a request that never reached JSON-RPC decoding with
// the given HTTP status and a JSON-RPC error object (CodeInvalidRequest, id null).
func (h *Handler) replyHTTPError(w http.ResponseWriter, status int, msg string) {
	out := h.getBuf()
	defer h.putBuf(out)
	if err := out.writeError(&Error{Code: CodeInvalidRequest, Message: msg}, nil); err != nil {
		panic("rpc: cannot encode a plain error object: " + err.Error())
	}
	writeJSON(w, status, out.Bytes())
}

// serve decodes body as one request or a batch and appends the response(s) to
// out; out stays empty when there is nothing to answer.
func (h *Handler) serve(ctx context.Context, body []byte, out *outBuf) {
	doc := trimSpace(body)
	if !json.Valid(doc) {
		// Lenient path, off the hot path: the user's API documentation has
		// a trailing comma in an example, so accept trailing commas (and
		// nothing else that is not JSON).
		fixed, changed := stripTrailingCommas(doc)
		if !changed || !json.Valid(fixed) {
			h.writeError(ctx, out, nil, parseError(fixed), nil)
			return
		}
		doc = fixed
	}
	switch doc[0] {
	case '[':
		h.serveBatch(ctx, doc, out)
	case '{':
		h.serveRequest(ctx, doc, out)
	default:
		h.writeError(ctx, out, nil, invalidRequest("a request must be an object or an array of them"), nil)
	}
}

func internalError() *Error {
	return &Error{Code: CodeInternalError, Message: "internal error"}
}

// serveBatch serves a batch, a valid JSON array.
func (h *Handler) serveBatch(ctx context.Context, doc []byte, out *outBuf) {
	w := walker{b: doc, i: 1}
	n := 0
	for {
		if _, ok := w.elem(); !ok {
			break
		}
		if n++; n > h.maxBatch {
			h.writeError(ctx, out, nil, invalidRequest(fmt.Sprintf("batch too large, the limit is %d requests", h.maxBatch)), nil)
			return
		}
	}
	if n == 0 {
		h.writeError(ctx, out, nil, invalidRequest("empty batch"), nil)
		return
	}

	out.WriteByte('[')
	answered := 0
	w = walker{b: doc, i: 1}
	for {
		req, ok := w.elem()
		if !ok {
			break
		}
		mark := out.Len()
		if answered > 0 {
			out.WriteByte(',')
		}
		if h.serveRequest(ctx, req, out) {
			answered++
		} else {
			out.Truncate(mark)
		}
	}
	if answered == 0 {
		out.Reset() // only notifications: no body at all
		return
	}
	out.WriteByte(']')
}

// serveRequest serves one request (an element of a batch or the whole body)
// and reports whether it appended a response to out.
func (h *Handler) serveRequest(ctx context.Context, doc []byte, out *outBuf) bool {
	req, rerr := parseRequest(doc)
	if rerr != nil {
		// Even a would-be notification is answered: it is not a Request.
		h.writeError(ctx, out, nil, rerr, nil)
		return true
	}
	notification := req.id == nil
	m, ok := h.methods[string(req.method)]
	if !ok {
		if notification {
			return false
		}
		h.writeError(ctx, out, req.method, &Error{
			Code:    CodeMethodNotFound,
			Message: "method not found: " + string(req.method),
		}, req.id)
		return true
	}
	if h.authorize != nil {
		if aerr := h.authorize(ctx, string(req.method)); aerr != nil {
			if !notification {
				h.writeError(ctx, out, req.method, aerr, req.id)
			}
			return !notification
		}
	}
	p, perr := bind(m.Params, req.params)
	if perr != nil {
		if notification {
			return false
		}
		h.writeError(ctx, out, req.method, perr, req.id)
		return true
	}
	result, werr := h.invoke(ctx, req.method, m, p)
	if notification {
		return false
	}
	if werr != nil {
		h.writeError(ctx, out, req.method, werr, req.id)
		return true
	}
	if err := out.writeResult(result, req.id); err != nil {
		h.logger.ErrorContext(ctx, "rpc: encode result", "method", string(req.method), "err", err)
		h.writeError(ctx, out, req.method, internalError(), req.id)
	}
	return true
}

// invoke runs a method and maps its outcome to a result or a wire error,
// recovering a panic.
func (h *Handler) invoke(ctx context.Context, name []byte, m Method, p Params) (result any, werr *Error) {
	defer func() {
		if v := recover(); v != nil {
			if h.logger.Enabled(ctx, slog.LevelError) { // spare debug.Stack when discarded
				h.logger.ErrorContext(ctx, "rpc: method panicked",
					"method", string(name), "panic", v, "stack", string(debug.Stack()))
			}
			result, werr = nil, internalError()
		}
	}()
	result, err := m.Call(ctx, p)
	if err != nil {
		return nil, h.wireError(ctx, name, err)
	}
	return result, nil
}

// wireError is the one table that maps a method's error to what the client
// sees: an *Error anywhere in the chain is sent as is; anything else is logged
// in full and becomes "internal error", so internal details never leak.
func (h *Handler) wireError(ctx context.Context, method []byte, err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok && e != nil {
		return e
	}
	h.logger.ErrorContext(ctx, "rpc: method failed", "method", string(method), "err", err)
	return internalError()
}

// writeError appends an error response. If e cannot be encoded (its Data does
// not marshal), the failure is logged and an internal error is sent instead.
func (h *Handler) writeError(ctx context.Context, out *outBuf, method []byte, e *Error, id []byte) {
	if err := out.writeError(e, id); err != nil {
		h.logger.ErrorContext(ctx, "rpc: encode error object", "method", string(method), "err", err)
		if err := out.writeError(internalError(), id); err != nil {
			panic("rpc: cannot encode a plain error object: " + err.Error())
		}
	}
}
