package main

// This file holds the request sources of the workloads and the checks of
// their replies: a comparison with the exact bytes sessiond sends, and when
// that fails a JSON comparison, so that a change of formatting that is still
// the same JSON-RPC reply is no error.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"
)

// The request id is always 1: one request at a time per connection.
const (
	verifyPrefix = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"`
	closePrefix  = `{"jsonrpc":"2.0","method":"session.close_session","params":{"token":"`
	tokenSuffix  = `"},"id":1}`
	openLifetime = 3600 // expires_in of the opens, in seconds
)

var openBody = []byte(`{"jsonrpc":"2.0","method":"session.open_session","params":{"expires_in":` + strconv.Itoa(openLifetime) + `},"id":1}`)

func verifyBody(buf []byte, tok string) []byte {
	return append(append(append(buf, verifyPrefix...), tok...), tokenSuffix...)
}

func closeBody(buf []byte, tok string) []byte {
	return append(append(append(buf, closePrefix...), tok...), tokenSuffix...)
}

// expect is a reply with a fixed result, as sessiond writes it.
type expect []byte

func newExpect(result string) expect {
	return expect(`{"jsonrpc":"2.0","result":` + result + `,"id":1}`)
}

var (
	expectActive   = newExpect(`{"active":true}`)
	expectInactive = newExpect(`{"active":false}`)
	expectTrue     = newExpect(`true`)
)

func (e expect) check(reply []byte) error {
	var got, want any
	if bytes.Equal(reply, e) || json.Unmarshal(reply, &got) == nil && json.Unmarshal(e, &want) == nil && reflect.DeepEqual(got, want) {
		return nil
	}
	return fmt.Errorf("reply %.300s, want %s", reply, e)
}

var (
	openReplyPrefix = []byte(`{"jsonrpc":"2.0","result":{"access_token":"`)
	openReplySuffix = []byte(`","expires_in":` + strconv.Itoa(openLifetime) + `},"id":1}`)
)

// openedToken checks a reply to openBody and returns the token in it.
func openedToken(reply []byte) (string, error) {
	if bytes.HasPrefix(reply, openReplyPrefix) && bytes.HasSuffix(reply, openReplySuffix) {
		if tok := reply[len(openReplyPrefix) : len(reply)-len(openReplySuffix)]; jwtShaped(tok) {
			return string(tok), nil
		}
	}
	var r struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int    `json:"id"`
		Result  struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
		} `json:"result"`
	}
	if err := json.Unmarshal(reply, &r); err != nil || r.JSONRPC != "2.0" || r.ID != 1 || r.Result.ExpiresIn != openLifetime || !jwtShaped([]byte(r.Result.AccessToken)) {
		return "", fmt.Errorf("bad open_session reply %.300s", reply)
	}
	return r.Result.AccessToken, nil
}

// jwtShaped reports whether tok is three non-empty base64url parts.
func jwtShaped(tok []byte) bool {
	parts := bytes.Split(tok, []byte("."))
	for _, p := range parts {
		if len(p) == 0 || bytes.IndexFunc(p, func(c rune) bool {
			return !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_')
		}) >= 0 {
			return false
		}
	}
	return len(parts) == 3
}

// cycleSource verifies the tokens of a pool in turn, forever, from an
// offset of its own: the floors, verify_hot and its variants.
type cycleSource struct {
	pool []string
	i    int
}

func newCycleSources(pool []string, conns int) []source {
	return repeat(conns, func(c int) source { return &cycleSource{pool: pool, i: c * len(pool) / conns} })
}

func (s *cycleSource) next(buf []byte) ([]byte, bool) {
	s.i = (s.i + 1) % len(s.pool)
	return verifyBody(buf, s.pool[s.i]), true
}

func (s *cycleSource) check(reply []byte) error { return expectActive.check(reply) }

// listSource sends one request per token of a shared list, each token once
// across all connections, until the list is used up: verify_cold, close,
// and the verifications that prepare close.
type listSource struct {
	list   []string
	cursor *atomic.Int64
	body   func(buf []byte, tok string) []byte
	want   expect
}

func newListSources(list []string, conns int, body func([]byte, string) []byte, want expect) []source {
	cursor := new(atomic.Int64)
	return repeat(conns, func(int) source { return &listSource{list, cursor, body, want} })
}

func (s *listSource) next(buf []byte) ([]byte, bool) {
	if i := s.cursor.Add(1) - 1; i < int64(len(s.list)) {
		return s.body(buf, s.list[i]), true
	}
	return buf, false
}

func (s *listSource) check(reply []byte) error { return s.want.check(reply) }

// openSource opens sessions, forever.
type openSource struct{}

func (openSource) next(buf []byte) ([]byte, bool) { return append(buf, openBody...), true }

func (openSource) check(reply []byte) error { _, err := openedToken(reply); return err }

// sessionKind is the kind of a request of a sessionSource.
type sessionKind int

const (
	kindVerify       sessionKind = iota // a live session: must be active
	kindVerifyClosed                    // a session this connection closed: must be inactive
	kindOpen
	kindClose
	numKinds
)

func (k sessionKind) String() string {
	return [numKinds]string{"verify", "verify_closed", "open", "close"}[k]
}

const (
	soakCycle  = 20 // the length of a connection's cycle of requests
	closedKeep = 16 // how many of its closed sessions a connection keeps verifying
)

// sessionSource is one connection of the soak's valid load and of mixed.
// It keeps want live sessions of its own (no other connection closes them)
// and in every soakCycle requests sends 1 open, 1 close of its oldest live
// session and 18 verifications of its live sessions in turn; in the soak
// (checkClosed) 2 of those verify closed sessions instead, the one just
// closed and one of its last closedKeep in turn, which must be inactive. A
// session thus lives as in production: verified the first time with the
// signature check, then from the verifier's cache, closed. The latency of
// each reply received from from on is added to lat, by kind.
type sessionSource struct {
	want                 int
	live                 []string // oldest first
	checkClosed, noClose bool     // noClose: drop the oldest session instead (--closes=false)
	verify, step         int
	closed               []string // the last closedKeep closed sessions
	closedTurn           int
	justClosed, closing  string
	last                 sessionKind
	stop                 *atomic.Bool // when set, next sends nothing
	sent, from           time.Time
	lat                  [numKinds]histogram
	sentN                [numKinds]uint64
	closedActive         uint64
}

// newMixedSources splits pool between conns connections, which start at
// different points of their cycle: mixed.
func newMixedSources(pool []string, conns int) []source {
	per := len(pool) / conns
	return repeat(conns, func(c int) source {
		return &sessionSource{want: per, live: append([]string(nil), pool[c*per:(c+1)*per]...), step: c % soakCycle, stop: new(atomic.Bool)}
	})
}

// startPhase starts a new latency window at from.
func (s *sessionSource) startPhase(from time.Time) { s.from, s.lat = from, [numKinds]histogram{} }

func (s *sessionSource) next(buf []byte) ([]byte, bool) {
	if s.stop.Load() {
		return buf, false
	}
	step := s.step
	s.step = (s.step + 1) % soakCycle
	s.last = kindVerify
	switch {
	case len(s.live) < s.want || step == 0: // also when an open failed
		s.last = kindOpen
		buf = append(buf, openBody...)
	case step == 10 && s.noClose:
		s.live = s.live[1:]
	case step == 10:
		s.last, s.closing, s.live = kindClose, s.live[0], s.live[1:]
		buf = closeBody(buf, s.closing)
	case step == 11 && s.justClosed != "":
		s.last = kindVerifyClosed
		buf = verifyBody(buf, s.justClosed)
		s.justClosed = ""
	case step == 5 && len(s.closed) > 0:
		s.last = kindVerifyClosed
		s.closedTurn++
		buf = verifyBody(buf, s.closed[s.closedTurn%len(s.closed)])
	}
	if s.last == kindVerify {
		s.verify = (s.verify + 1) % len(s.live)
		buf = verifyBody(buf, s.live[s.verify])
	}
	s.sentN[s.last]++
	s.sent = time.Now()
	return buf, true
}

func (s *sessionSource) check(reply []byte) error {
	if !s.sent.Before(s.from) {
		s.lat[s.last].add(time.Since(s.sent))
	}
	switch s.last {
	case kindOpen:
		tok, err := openedToken(reply)
		if err == nil {
			s.live = append(s.live, tok)
		}
		return err
	case kindClose:
		if err := expectTrue.check(reply); err != nil || !s.checkClosed {
			return err
		}
		s.closed = append(s.closed, s.closing)
		s.closed, s.justClosed = s.closed[max(0, len(s.closed)-closedKeep):], s.closing
	case kindVerifyClosed:
		if expectActive.check(reply) == nil {
			s.closedActive++
			return errClosedActive
		}
		return expectInactive.check(reply)
	default:
		return expectActive.check(reply)
	}
	return nil
}
