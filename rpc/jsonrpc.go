package rpc

// This file is the generic JSON-RPC 2.0 layer: HTTP, decoding, batches, the
// method table and the one table that maps errors to JSON-RPC error objects.
// It knows nothing of sessions.
//
// The request decoder is a two-step affair: json.Valid checks the whole body
// once (it allocates nothing), and then a small walker that trusts that check
// slices the envelope, the params and the id out of the body without copying
// or reflection. Raw ids are therefore echoed byte for byte, which is why a
// request that is not valid UTF-8 is refused (-32600) rather than answered.

import (
	"bytes"
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
	"unicode/utf8"
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

// Params are a request's parameters, by name whatever way the client sent them.
//
// A Params refers to the request body: it is valid, and safe to keep, for as long
// as the caller holds it (the body is never reused), but the RawMessage values
// returned by Get share its memory and must not be modified.
type Params struct {
	names []string // the method's parameter names, in positional order
	raw   []byte   // the params object or array as sent, nil when absent or null
}

// Get returns the raw JSON of the named parameter and whether it was present.
// A JSON null counts as present (raw is "null"). A name the method does not
// declare is never present.
func (p Params) Get(name string) (json.RawMessage, bool) {
	pos := -1
	for i, n := range p.names {
		if n == name {
			pos = i
			break
		}
	}
	if pos < 0 || len(p.raw) == 0 {
		return nil, false
	}
	w := walker{b: p.raw, i: 1}
	if p.raw[0] == '{' {
		// Duplicate names: the last one wins, as in encoding/json.
		var val []byte
		for {
			k, v, ok := w.member()
			if !ok {
				return val, val != nil
			}
			if string(unquote(k)) == name {
				val = v
			}
		}
	}
	for i := 0; ; i++ {
		v, ok := w.elem()
		if !ok {
			return nil, false
		}
		if i == pos {
			return v, true
		}
	}
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

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = []string{"application/json"}
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client is gone; nothing left to tell it
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

// parseError describes why doc is not JSON. Only called on failure.
func parseError(doc []byte) *Error {
	var v any
	err := json.Unmarshal(doc, &v)
	if err == nil { // not reached: doc failed json.Valid
		return &Error{Code: CodeParseError, Message: "parse error"}
	}
	return &Error{Code: CodeParseError, Message: "parse error: " + err.Error()}
}

func invalidRequest(msg string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "invalid request: " + msg}
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

// request is a decoded envelope; its slices point into the body.
type request struct {
	method []byte // the method name, unquoted
	params []byte // object or array; nil when absent or null
	id     []byte // raw JSON of the id; nil for a notification
}

// parseRequest validates one request, a valid JSON value, per the specification.
func parseRequest(doc []byte) (request, *Error) {
	if doc[0] != '{' {
		return request{}, invalidRequest("a request must be an object")
	}
	// json.Valid accepts invalid UTF-8 inside strings; RFC 8259 does not.
	// The id (and a param a method hands back) is echoed byte for byte, so
	// such a request is refused whole rather than answered with a reply
	// that is not JSON. Tokens are ASCII: this is one fast pass.
	if !utf8.Valid(doc) {
		return request{}, invalidRequest("the request is not valid UTF-8; send JSON text encoded as UTF-8 (RFC 8259)")
	}
	var req request
	var version, method []byte
	w := walker{b: doc, i: 1}
	for {
		k, v, ok := w.member()
		if !ok {
			break
		}
		// Member names are case-sensitive; duplicates: the last one wins.
		switch string(unquote(k)) {
		case "jsonrpc":
			version = v
		case "method":
			method = v
		case "params":
			req.params = v
		case "id":
			req.id = v
		}
	}
	if len(version) == 0 || version[0] != '"' || string(unquote(version)) != "2.0" {
		return request{}, invalidRequest(`"jsonrpc" must be "2.0"`)
	}
	if len(method) == 0 || method[0] != '"' {
		return request{}, invalidRequest(`"method" must be a string`)
	}
	req.method = unquote(method)
	if req.params != nil {
		switch req.params[0] {
		case '{', '[':
		case 'n': // null: the same as absent
			req.params = nil
		default:
			return request{}, invalidRequest(`"params" must be an object or an array`)
		}
	}
	if req.id != nil {
		switch c := req.id[0]; {
		case c == '"', c == 'n', c == '-', '0' <= c && c <= '9':
		default:
			return request{}, invalidRequest(`"id" must be a string, a number or null`)
		}
	}
	return req, nil
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

// bind checks params against the method's parameter names.
func bind(names []string, raw []byte) (Params, *Error) {
	p := Params{names: names, raw: raw}
	if raw == nil {
		return p, nil
	}
	w := walker{b: raw, i: 1}
	if raw[0] == '{' {
		for {
			k, _, ok := w.member()
			if !ok {
				return p, nil
			}
			if !declared(names, unquote(k)) {
				if len(names) == 0 {
					return Params{}, InvalidParams("unknown parameter %q, the method takes no parameters", unquote(k))
				}
				return Params{}, InvalidParams("unknown parameter %q, allowed: %s", unquote(k), quoteAll(names))
			}
		}
	}
	n := 0
	for {
		if _, ok := w.elem(); !ok {
			break
		}
		n++
	}
	if n > len(names) {
		if len(names) == 0 {
			return Params{}, InvalidParams("too many parameters: got %d, the method takes none", n)
		}
		return Params{}, InvalidParams("too many parameters: got %d, the method takes at most %d (%s)", n, len(names), quoteAll(names))
	}
	return p, nil
}

func declared(names []string, name []byte) bool {
	for _, n := range names {
		if n == string(name) {
			return true
		}
	}
	return false
}

func quoteAll(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(n))
	}
	return b.String()
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

func (h *Handler) getBuf() *outBuf { return h.buffers.Get().(*outBuf) }

func (h *Handler) putBuf(b *outBuf) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	h.buffers.Put(b)
}

// outBuf is a pooled response buffer with an encoder that writes into it.
type outBuf struct {
	bytes.Buffer
	enc *json.Encoder
}

// writeResult appends {"jsonrpc":"2.0","result":…,"id":…}. On error out is unchanged.
func (b *outBuf) writeResult(result any, id []byte) error {
	mark := b.Len()
	b.WriteString(`{"jsonrpc":"2.0","result":`)
	if err := b.writeValue(result); err != nil {
		b.Truncate(mark)
		return err
	}
	b.writeID(id)
	return nil
}

// writeError appends {"jsonrpc":"2.0","error":{…},"id":…}. On error out is unchanged.
func (b *outBuf) writeError(e *Error, id []byte) error {
	mark := b.Len()
	b.WriteString(`{"jsonrpc":"2.0","error":`)
	if err := b.writeValue(e); err != nil {
		b.Truncate(mark)
		return err
	}
	b.writeID(id)
	return nil
}

func (b *outBuf) writeID(id []byte) {
	b.WriteString(`,"id":`)
	if id == nil {
		b.WriteString("null")
	} else {
		b.Write(id) // a scalar sliced from valid JSON: nothing to compact
	}
	b.WriteByte('}')
}

// writeValue appends v as JSON, with fast paths for common results.
func (b *outBuf) writeValue(v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case json.RawMessage:
		if v == nil {
			b.WriteString("null")
			return nil
		}
		return json.Compact(&b.Buffer, v) // validates; writes nothing on error
	case bool:
		b.Write(strconv.AppendBool(b.AvailableBuffer(), v))
	case int:
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(v), 10))
	case int64:
		b.Write(strconv.AppendInt(b.AvailableBuffer(), v, 10))
	default:
		if err := b.enc.Encode(v); err != nil { // writes nothing on error
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	return nil
}

// The walker and the helpers below only ever see JSON that json.Valid has
// accepted, so they check nothing.

// walker iterates over the members of an object or the elements of an array.
// Start it with i = 1, just after the opening bracket.
type walker struct {
	b []byte
	i int
}

// member returns the next member's raw key (quoted) and raw value.
func (w *walker) member() (key, val []byte, ok bool) {
	w.i = skipSpace(w.b, w.i)
	if w.b[w.i] == ',' {
		w.i = skipSpace(w.b, w.i+1)
	}
	if w.b[w.i] == '}' {
		return nil, nil, false
	}
	start := w.i
	w.i = skipString(w.b, w.i)
	key = w.b[start:w.i]
	w.i = skipSpace(w.b, skipSpace(w.b, w.i)+1) // the colon
	start = w.i
	w.i = skipValue(w.b, w.i)
	return key, w.b[start:w.i], true
}

// elem returns the next element's raw value.
func (w *walker) elem() (val []byte, ok bool) {
	w.i = skipSpace(w.b, w.i)
	if w.b[w.i] == ',' {
		w.i = skipSpace(w.b, w.i+1)
	}
	if w.b[w.i] == ']' {
		return nil, false
	}
	start := w.i
	w.i = skipValue(w.b, w.i)
	return w.b[start:w.i], true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	b = b[skipSpace(b, 0):]
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// skipString returns the index just after the string starting at b[i] == '"',
// or len(b) if it is not terminated.
func skipString(b []byte, i int) int {
	for i++; i < len(b); {
		// Jump to the next quote (IndexByte is vectorised: tokens are long),
		// then make sure no odd run of backslashes escapes it.
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return len(b)
		}
		end := i + q
		slashes := 0
		for j := end - 1; j >= i && b[j] == '\\'; j-- {
			slashes++
		}
		if slashes%2 == 0 {
			return end + 1
		}
		i = end + 1
	}
	return len(b)
}

// skipValue returns the index just after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// unquote returns the contents of the JSON string s (quotes included), without
// copying unless s has escapes.
func unquote(s []byte) []byte {
	inner := s[1 : len(s)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var str string
	if err := json.Unmarshal(s, &str); err != nil {
		return inner // not reached for valid JSON
	}
	return []byte(str)
}

// stripTrailingCommas returns a copy of doc without the commas that follow a
// value and precede a '}' or ']' (whitespace aside), and whether it removed
// any. It respects strings and their escapes and leaves everything else,
// valid or not, to the JSON decoder.
func stripTrailingCommas(doc []byte) ([]byte, bool) {
	out := make([]byte, 0, len(doc))
	removed := false
	var prev byte // the last significant byte copied, outside strings
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		switch {
		case c == '"':
			j := skipString(doc, i)
			out = append(out, doc[i:j]...)
			i = j - 1
			prev = c
			continue
		case isSpace(c):
			out = append(out, c)
			continue
		case c == ',' && prev != 0 && prev != ',' && prev != '[' && prev != '{' && prev != ':':
			if k := skipSpace(doc, i+1); k < len(doc) && (doc[k] == '}' || doc[k] == ']') {
				removed = true
				continue
			}
		}
		out = append(out, c)
		prev = c
	}
	return out, removed
}
