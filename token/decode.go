package token

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The JSON of a session token's header and claims is read by the small
// strict decoder below rather than by encoding/json: the header is read
// before the signature is checked, for every forged token too, and the
// generic decode (a map[string]any header, reflection over the claims)
// cost as much garbage as the rest of a verification.
//
// What it accepts is RFC 8259 JSON with these decisions:
//   - The value is one object; whitespace (space, tab, CR, LF) may surround
//     any token, nothing else may follow the object.
//   - Member names are matched exactly, after unescaping. A name may appear
//     once: a duplicate is refused (RFC 7515 §4 allows a parser that keeps
//     the last one; refusing is the safer of the two choices). A claims
//     member whose name differs from a registered claim's only in case
//     ("ISS", "Exp", "ſub") is refused too: encoding/json, which read the
//     claims before, took it for that claim.
//   - Escapes (\" \\ \/ \b \f \n \r \t \uXXXX) are decoded, in every member
//     and name alike, as encoding/json decodes them: a surrogate pair is one
//     character, a lone surrogate is U+FFFD. Bytes that are not UTF-8 are
//     kept as they are; a value that must be a [ValidSubject] or equal an
//     expected string refuses them then.
//   - At most maxMembers members per object and maxDepth levels of nesting
//     in the values of members it does not know, which it checks for
//     syntax and skips. sessiond writes three header members and at most
//     five claims, none nested.
//
// Strings are unescaped in place, in the buffer being read: an escaped
// form is never shorter than what it stands for. The buffer is the
// decoder's own copy of the base64url segment, so nothing else sees it.

// maxMembers bounds the members of one object, so that the duplicate check
// (each name against every earlier one) stays cheap on a header an attacker
// wrote.
const maxMembers = 32

// maxDepth bounds the nesting of values the decoder skips.
const maxDepth = 16

// The messages of the decoder's errors, by jsonReader.msg.
const (
	eNone jsonError = iota
	eDuplicate
	eControl
	eTrailing
	eUEscape
	eEscape
	eNumber
	eValue
	eMembers
	eNotObject
	eUnterminated
	eDepth
	eListSep
	eMemberSep
	eValueSep
	eColon
	eName
)

var jsonErrors = [...]string{
	eDuplicate:    "duplicate member",
	eControl:      "control character in a string",
	eTrailing:     "data after the object",
	eUEscape:      "invalid \\u escape",
	eEscape:       "invalid escape",
	eNumber:       "invalid number",
	eValue:        "invalid value",
	eMembers:      "more than 32 members in an object",
	eNotObject:    "not a JSON object",
	eUnterminated: "unterminated string",
	eDepth:        "values nested more than 16 deep",
	eListSep:      "want ',' or ']' in a list",
	eMemberSep:    "want ',' or '}' after a member",
	eValueSep:     "want ',' or the end of a list or object",
	eColon:        "want ':' after a member name",
	eName:         "want a member name",
}

// jsonError is the kind of a decoder error, a number rather than a
// string for the reason given at jsonReader.
type jsonError uint8

// jsonReader reads one JSON object from b. The first error sticks: every
// method does nothing once one is set.
//
// The error is kept as a message and an offset, and made into an error
// value only by err: escape analysis does not tell a struct's fields
// apart, so an error value stored in the reader would take the buffer it
// reads to the heap with it, and the buffer is meant to live on the stack.
type jsonReader struct {
	b     []byte
	i     int
	msg   jsonError // the first error; eNone for none
	at    int       // where it happened
	dup   bool      // it is a duplicate member, b[at:dupEnd] its name
	first bool      // no member read yet
	// names are the members read so far, as offsets into b.
	names  [maxMembers]struct{ start, end int32 }
	n      int
	dupEnd int
}

// failed reports whether an error has been found.
func (r *jsonReader) failed() bool { return r.msg != eNone }

func (r *jsonReader) fail(msg jsonError) {
	if r.msg == eNone {
		r.msg, r.at = msg, r.i
	}
}

// err returns the first error found, nil if none.
func (r *jsonReader) err() error {
	switch {
	case r.msg == eNone:
		return nil
	case r.dup:
		return fmt.Errorf("duplicate member %q at offset %d", string(r.b[r.at:r.dupEnd]), r.at)
	}
	return fmt.Errorf("%s at offset %d", jsonErrors[r.msg], r.at)
}

func (r *jsonReader) skipSpace() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\r', '\n':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next byte that is not whitespace, 0 at the end.
func (r *jsonReader) peek() byte {
	r.skipSpace()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// open reads the '{' that starts the object.
func (r *jsonReader) open() {
	if r.peek() != '{' {
		r.fail(eNotObject)
		return
	}
	r.i++
	r.first = true
}

// next reads up to the value of the next member and returns its name, or
// returns false at the end of the object (or on an error: see err).
func (r *jsonReader) next() ([]byte, bool) {
	if r.failed() {
		return nil, false
	}
	c := r.peek()
	if c == '}' && r.first {
		r.i++
		return nil, false
	}
	if !r.first {
		switch c {
		case '}':
			r.i++
			return nil, false
		case ',':
			r.i++
			c = r.peek()
		default:
			r.fail(eMemberSep)
			return nil, false
		}
	}
	r.first = false
	if c != '"' {
		r.fail(eName)
		return nil, false
	}
	start := r.i + 1
	name, ok := r.str()
	if !ok {
		return nil, false
	}
	for _, p := range r.names[:r.n] {
		if bytes.Equal(r.b[p.start:p.end], name) {
			r.msg, r.dup, r.at, r.dupEnd = eDuplicate, true, start, start+len(name)
			return nil, false
		}
	}
	if r.n == maxMembers {
		r.fail(eMembers)
		return nil, false
	}
	r.names[r.n].start, r.names[r.n].end = int32(start), int32(start+len(name))
	r.n++
	if r.peek() != ':' {
		r.fail(eColon)
		return nil, false
	}
	r.i++
	r.skipSpace()
	return name, true
}

// end checks that nothing but whitespace follows the object.
func (r *jsonReader) end() error {
	if !r.failed() {
		if r.skipSpace(); r.i != len(r.b) {
			r.fail(eTrailing)
		}
	}
	return r.err()
}

// str reads a string, whose opening quote is at r.i, and returns it
// unescaped (in place).
func (r *jsonReader) str() ([]byte, bool) {
	b := r.b
	i := r.i + 1
	start := i
	// Fast path: no escape.
	for i < len(b) {
		c := b[i]
		if c == '"' {
			r.i = i + 1
			return b[start:i], true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			r.i = i
			r.fail(eControl)
			return nil, false
		}
		i++
	}
	w := i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			r.i = i + 1
			return b[start:w], true
		case c < 0x20:
			r.i = i
			r.fail(eControl)
			return nil, false
		case c != '\\':
			b[w] = c
			w++
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			b[w] = e
		case 'b':
			b[w] = '\b'
		case 'f':
			b[w] = '\f'
		case 'n':
			b[w] = '\n'
		case 'r':
			b[w] = '\r'
		case 't':
			b[w] = '\t'
		case 'u':
			cp, ok := hex4(b[i+2:])
			if !ok {
				r.i = i
				r.fail(eUEscape)
				return nil, false
			}
			i += 6
			ch := rune(cp)
			if utf16.IsSurrogate(ch) {
				ch = utf8.RuneError
				if lo, ok := hex4Escape(b[i:]); ok {
					if pair := utf16.DecodeRune(rune(cp), rune(lo)); pair != utf8.RuneError {
						ch = pair
						i += 6
					}
				}
			}
			w += utf8.EncodeRune(b[w:], ch)
			continue
		default:
			r.i = i
			r.fail(eEscape)
			return nil, false
		}
		w++
		i += 2
	}
	r.i = len(b)
	r.fail(eUnterminated)
	return nil, false
}

// hex4 reads the four hex digits at the start of b.
func hex4(b []byte) (uint16, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v uint16
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}

// hex4Escape reads a \uXXXX escape at the start of b.
func hex4Escape(b []byte) (uint16, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	return hex4(b[2:])
}

// number reads a JSON number and returns its text.
func (r *jsonReader) number() []byte {
	b, start, i := r.b, r.i, r.i
	digits := func() bool {
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		r.i = i
		r.fail(eNumber)
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			r.i = i
			r.fail(eNumber)
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			r.i = i
			r.fail(eNumber)
			return nil
		}
	}
	r.i = i
	return b[start:i]
}

// skip reads any value and checks its syntax.
func (r *jsonReader) skip(depth int) {
	if r.failed() {
		return
	}
	switch c := r.peek(); {
	case c == '"':
		r.str()
	case c == '-' || '0' <= c && c <= '9':
		r.number()
	case c == '{' || c == '[':
		if depth >= maxDepth {
			r.fail(eDepth)
			return
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		r.i++
		if r.peek() == closing {
			r.i++
			return
		}
		for !r.failed() {
			if c == '{' {
				if r.peek() != '"' {
					r.fail(eName)
					return
				}
				// Names inside skipped values are not checked
				// for duplicates: nothing reads them.
				if _, ok := r.str(); !ok {
					return
				}
				if r.peek() != ':' {
					r.fail(eColon)
					return
				}
				r.i++
			}
			r.skip(depth + 1)
			switch r.peek() {
			case ',':
				r.i++
			case closing:
				r.i++
				return
			default:
				r.fail(eValueSep)
			}
		}
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(r.b[r.i:], []byte(lit)) {
				r.i += len(lit)
				return
			}
		}
		r.fail(eValue)
	}
}

// strValue reads the member's value if it is a string; if it is another
// value it skips it and returns false (check err for a syntax error).
func (r *jsonReader) strValue() ([]byte, bool) {
	if r.peek() == '"' {
		return r.str()
	}
	r.skip(0)
	return nil, false
}

// joseHeader is what verifyJWS reads of a JOSE header. A member that is
// present but not a string leaves its field nil with its present flag set.
type joseHeader struct {
	alg, typ, kid          []byte
	hasAlg, hasTyp, hasKid bool
	crit                   bool // "crit" is present, whatever its value
}

// parseHeader reads a JOSE header. Members other than alg, typ, kid and
// crit are checked for syntax and ignored (jku, x5u and jwk among them: they
// are never followed).
func parseHeader(b []byte) (joseHeader, error) {
	var h joseHeader
	r := jsonReader{b: b}
	r.open()
	for {
		name, ok := r.next()
		if !ok {
			break
		}
		switch string(name) {
		case "alg":
			h.hasAlg = true
			h.alg, _ = r.strValue()
		case "typ":
			h.hasTyp = true
			h.typ, _ = r.strValue()
		case "kid":
			h.hasKid = true
			h.kid, _ = r.strValue()
		case "crit":
			h.crit = true
			r.skip(0)
		default:
			r.skip(0)
		}
	}
	if err := r.end(); err != nil {
		return joseHeader{}, err
	}
	return h, nil
}

// tokenClaims are the claims of a session token as read, before they are
// checked against the clock and the issuer.
type tokenClaims struct {
	iss, sub, jti []byte
	exp, iat, nbf int64
	// Which members are present.
	hasIss, hasSub, hasJti, hasExp, hasIat, hasNbf bool
}

// The decode errors of claims; they become the detail of ErrMalformed.
var (
	errDates   = fmt.Errorf("exp, iat and nbf must be whole seconds from 0 to %d", maxNumericDate)
	errSubject = fmt.Errorf("sub must be a string of 1 to %d bytes of valid UTF-8 without control characters", MaxSubjectSize)
	errString  = errors.New("iss and jti must be strings")
	errAud     = errors.New("aud must be a string or a list of strings")
)

// registered are the claims of RFC 7519 §4.1 that sessiond reads or
// checks; a member named like one of them but for case is refused.
var registered = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// parseClaims reads the claims of a session token strictly: "exp", "iat"
// and "nbf", when present, JSON integers from 0 to maxNumericDate, as
// issue.Issuer writes them; "iss" and "jti" strings; "sub" a
// [ValidSubject]; "aud" a string or a list of strings (not checked further:
// sessiond does not use it). golang-jwt and encoding/json alone would also
// take a string ("9999999999"), a fraction or an exponent as a date, and
// turn values past time.Time's range into arbitrary times (1e300
// "expired", 9.2e18 "never expires"); other JWT libraries read such claims
// differently or not at all.
func parseClaims(b []byte) (tokenClaims, error) {
	var c tokenClaims
	r := jsonReader{b: b}
	r.open()
	for {
		name, ok := r.next()
		if !ok {
			break
		}
		var date *int64
		switch string(name) {
		case "iss":
			c.hasIss = true
			if c.iss, ok = r.strValue(); !ok && !r.failed() {
				return tokenClaims{}, errString
			}
		case "jti":
			c.hasJti = true
			if c.jti, ok = r.strValue(); !ok && !r.failed() {
				return tokenClaims{}, errString
			}
		case "sub":
			c.hasSub = true
			if c.sub, ok = r.strValue(); !ok && !r.failed() || ok && !validSubject(c.sub) {
				return tokenClaims{}, errSubject
			}
		case "aud":
			if !r.audience() && !r.failed() {
				return tokenClaims{}, errAud
			}
		case "exp":
			c.hasExp, date = true, &c.exp
		case "iat":
			c.hasIat, date = true, &c.iat
		case "nbf":
			c.hasNbf, date = true, &c.nbf
		default:
			for _, reg := range registered {
				if bytes.EqualFold(name, []byte(reg)) {
					return tokenClaims{}, fmt.Errorf("member %q: the claim is %q", string(name), reg)
				}
			}
			r.skip(0)
		}
		if date != nil {
			if first := r.peek(); first != '-' && (first < '0' || first > '9') {
				r.skip(0)
				if !r.failed() {
					return tokenClaims{}, errDates
				}
				continue
			}
			n, ok := wholeSeconds(r.number())
			if !ok && !r.failed() {
				return tokenClaims{}, errDates
			}
			*date = n
		}
	}
	if err := r.end(); err != nil {
		return tokenClaims{}, err
	}
	return c, nil
}

// audience reads an "aud" value: a string, a list of strings or null.
func (r *jsonReader) audience() bool {
	switch r.peek() {
	case '"':
		_, ok := r.str()
		return ok
	case 'n':
		r.skip(0)
		return true
	case '[':
		r.i++
		if r.peek() == ']' {
			r.i++
			return true
		}
		for !r.failed() {
			if r.peek() != '"' {
				r.skip(0)
				return false
			}
			if _, ok := r.str(); !ok {
				return false
			}
			switch r.peek() {
			case ',':
				r.i++
			case ']':
				r.i++
				return true
			default:
				r.fail(eListSep)
			}
		}
		return false
	}
	r.skip(0)
	return false
}

// wholeSeconds reads a JSON number that must be an integer from 0 to
// maxNumericDate.
func wholeSeconds(num []byte) (int64, bool) {
	if len(num) == 0 || len(num) > 12 { // maxNumericDate has 12 digits
		return 0, false
	}
	var n int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= maxNumericDate
}

// validSubject is [ValidSubject] of a []byte.
func validSubject(b []byte) bool {
	if len(b) == 0 || len(b) > MaxSubjectSize || !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r < 0x20 || 0x7f <= r && r <= 0x9f { // unicode.IsControl
			return false
		}
		i += size
	}
	return true
}

// parseUUID reads a UUID in its 36-character form (RFC 9562 §4), hex
// digits in either case: what uuid.Parse accepts of that length, without
// the copy its error path makes of the input.
func parseUUID(b []byte) (uuid.UUID, bool) {
	var id uuid.UUID
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return id, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
		}
		hi, ok1 := hexDigit(b[i])
		lo, ok2 := hexDigit(b[i+1])
		if !ok1 || !ok2 {
			return uuid.UUID{}, false
		}
		id[j] = hi<<4 | lo
		j++
	}
	return id, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
