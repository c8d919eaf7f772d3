package rpc

// This file is the request decoder: the envelope (parseRequest), the
// binding of params by name or position (bind, Params), and the walker
// that slices JSON apart.
//
// Decoding is a two-step affair: validJSON (valid.go: what json.Valid
// accepts, faster) checks the whole body once (it allocates nothing), and then a small walker that trusts that check slices
// the envelope, the params and the id out of the body without copying or
// reflection. Raw ids are therefore echoed byte for byte, which is why a
// request that is not valid UTF-8 is refused (-32600) rather than answered.

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Params are a request's parameters, by name whatever way the client sent them.
//
// A Params refers to the request body, and so do the RawMessage values Get
// returns: they must not be modified, and they are valid only until the reply
// is written (a result may be one of them), since the Handler reuses the
// body's memory for later requests. A method that keeps a parameter beyond
// that copies it (string(raw), json.Unmarshal).
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

// parseError describes why doc is not JSON. Only called on failure.
func parseError(doc []byte) *Error {
	var v any
	err := json.Unmarshal(doc, &v)
	if err == nil { // not reached: doc failed validJSON, which is json.Valid
		return &Error{Code: CodeParseError, Message: "parse error"}
	}
	return &Error{Code: CodeParseError, Message: "parse error: " + err.Error()}
}

func invalidRequest(msg string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "invalid request: " + msg}
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
	// validJSON, like json.Valid, accepts invalid UTF-8 inside strings;
	// RFC 8259 does not.
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

// The walker and the helpers below only ever see JSON that validJSON has
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
