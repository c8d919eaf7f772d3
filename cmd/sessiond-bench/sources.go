package main

// This file holds the request sources of the workloads and the checks of
// their replies. Every reply is checked: a fast comparison with the exact
// bytes sessiond sends today, and, when that fails, a real JSON decoding, so
// that a change in formatting that is still correct JSON-RPC is no error.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
)

// The request id is always 1: one request at a time per connection.
const (
	verifyPrefix = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"`
	closePrefix  = `{"jsonrpc":"2.0","method":"session.close_session","params":{"token":"`
	tokenSuffix  = `"},"id":1}`
)

// openLifetime is the expires_in of the open workload, in seconds.
const openLifetime = 3600

var openBody = []byte(`{"jsonrpc":"2.0","method":"session.open_session","params":{"expires_in":` + strconv.Itoa(openLifetime) + `},"id":1}`)

func verifyBody(buf []byte, tok string) []byte {
	buf = append(buf, verifyPrefix...)
	buf = append(buf, tok...)
	return append(buf, tokenSuffix...)
}

func closeBody(buf []byte, tok string) []byte {
	buf = append(buf, closePrefix...)
	buf = append(buf, tok...)
	return append(buf, tokenSuffix...)
}

// expect checks a reply whose result is a fixed JSON value.
type expect struct {
	exact  []byte // the whole reply as sessiond writes it
	result []byte // the result alone, compact
}

func newExpect(result string) expect {
	return expect{
		exact:  []byte(`{"jsonrpc":"2.0","result":` + result + `,"id":1}`),
		result: []byte(result),
	}
}

var (
	expectActive = newExpect(`{"active":true}`)
	expectTrue   = newExpect(`true`)
)

func (e expect) check(reply []byte) error {
	if bytes.Equal(reply, e.exact) {
		return nil
	}
	result, err := decodeReply(reply)
	if err != nil {
		return err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, result); err != nil || !bytes.Equal(compact.Bytes(), e.result) {
		return fmt.Errorf("result %s, want %s", result, e.result)
	}
	return nil
}

// decodeReply decodes a JSON-RPC response with id 1 and returns its result.
func decodeReply(reply []byte) (json.RawMessage, error) {
	var r struct {
		JSONRPC string          `json:"jsonrpc"`
		Result  json.RawMessage `json:"result"`
		Error   json.RawMessage `json:"error"`
		ID      json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return nil, fmt.Errorf("bad reply %.200q: %v", reply, err)
	}
	switch {
	case r.Error != nil:
		return nil, fmt.Errorf("JSON-RPC error %s", r.Error)
	case r.JSONRPC != "2.0" || string(r.ID) != "1" || r.Result == nil:
		return nil, fmt.Errorf("bad reply %.200q", reply)
	}
	return r.Result, nil
}

var (
	openReplyPrefix = []byte(`{"jsonrpc":"2.0","result":{"access_token":"`)
	openReplySuffix = []byte(`","expires_in":` + strconv.Itoa(openLifetime) + `},"id":1}`)
)

// openedToken checks the reply to openBody and returns the token in it; the
// slice shares reply's memory.
func openedToken(reply []byte) ([]byte, error) {
	if bytes.HasPrefix(reply, openReplyPrefix) && bytes.HasSuffix(reply, openReplySuffix) {
		tok := reply[len(openReplyPrefix) : len(reply)-len(openReplySuffix)]
		if jwtShaped(tok) {
			return tok, nil
		}
	}
	result, err := decodeReply(reply)
	if err != nil {
		return nil, err
	}
	var r struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(result, &r); err != nil || r.ExpiresIn != openLifetime || !jwtShaped([]byte(r.AccessToken)) {
		return nil, fmt.Errorf("bad open_session result %.300s", result)
	}
	return []byte(r.AccessToken), nil
}

// jwtShaped reports whether tok is three non-empty base64url parts.
func jwtShaped(tok []byte) bool {
	parts, start := 0, 0
	for i, c := range tok {
		switch {
		case c == '.':
			if i == start {
				return false
			}
			parts++
			start = i + 1
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return parts == 2 && start < len(tok)
}

// cycleSource verifies the tokens of a pool in turn, forever; each
// connection starts at its own offset. The floors and verify_hot use it.
type cycleSource struct {
	pool []string
	i    int
}

func newCycleSources(pool []string, conns int) []source {
	srcs := make([]source, conns)
	for c := range srcs {
		srcs[c] = &cycleSource{pool: pool, i: c * len(pool) / conns}
	}
	return srcs
}

func (s *cycleSource) next(buf []byte) ([]byte, bool) {
	tok := s.pool[s.i]
	if s.i++; s.i == len(s.pool) {
		s.i = 0
	}
	return verifyBody(buf, tok), true
}

func (s *cycleSource) check(reply []byte) error { return expectActive.check(reply) }

// listSource sends one request per token of a shared list, each token once
// across all connections, until the list is used up: verify_cold, close, and
// the verifications that prepare close.
type listSource struct {
	list   []string
	cursor *atomic.Int64
	body   func(buf []byte, tok string) []byte
	want   expect
}

func newListSources(list []string, conns int, body func([]byte, string) []byte, want expect) []source {
	cursor := new(atomic.Int64)
	srcs := make([]source, conns)
	for c := range srcs {
		srcs[c] = &listSource{list: list, cursor: cursor, body: body, want: want}
	}
	return srcs
}

func (s *listSource) next(buf []byte) ([]byte, bool) {
	i := s.cursor.Add(1) - 1
	if i >= int64(len(s.list)) {
		return buf, false
	}
	return s.body(buf, s.list[i]), true
}

func (s *listSource) check(reply []byte) error { return s.want.check(reply) }

// openSource opens sessions, forever.
type openSource struct{}

func (openSource) next(buf []byte) ([]byte, bool) { return append(buf, openBody...), true }

func (openSource) check(reply []byte) error {
	_, err := openedToken(reply)
	return err
}

// mixedSource is one connection of the mixed workload: in every 20 requests,
// 18 verify, 1 opens and 1 closes. The connection owns a ring of live tokens
// (its share of the pool) that it verifies in turn; a close ends the session
// of the ring's oldest token, which has been verified many times, and the
// token the last open returned takes its place. Sessions thus live as they do
// in production: opened, verified (the first time with the signature check,
// then from the verifier's cache), closed.
type mixedSource struct {
	ring   []string
	oldest int    // the ring slot the next close ends
	verify int    // the ring slot the next verify checks
	step   int    // position in the cycle of 20
	opened string // token of the last open, not yet in the ring
	last   int    // what the last request was
}

const (
	mixedVerify = iota
	mixedOpen
	mixedClose
)

// newMixedSources splits pool, which must hold at least two tokens per
// connection, between conns connections, and starts them at different points
// of the cycle. No two connections share a token: one would close what the
// other verifies.
func newMixedSources(pool []string, conns int) []source {
	per := len(pool) / conns
	if per < 2 {
		panic("newMixedSources: fewer than two tokens per connection")
	}
	srcs := make([]source, conns)
	for c := range srcs {
		ring := slices.Clone(pool[c*per : (c+1)*per])
		srcs[c] = &mixedSource{ring: ring, step: c % 20}
	}
	return srcs
}

func (s *mixedSource) next(buf []byte) ([]byte, bool) {
	step := s.step
	s.step = (s.step + 1) % 20
	switch {
	case step == 9:
		s.last = mixedOpen
		return append(buf, openBody...), true
	case step == 19 && s.opened != "":
		s.last = mixedClose
		tok := s.ring[s.oldest]
		s.ring[s.oldest] = s.opened
		s.opened = ""
		s.oldest = (s.oldest + 1) % len(s.ring)
		return closeBody(buf, tok), true
	default:
		// Also when the cycle starts at a close before any open: no token
		// of this connection's own to close yet.
		s.last = mixedVerify
		tok := s.ring[s.verify]
		s.verify = (s.verify + 1) % len(s.ring)
		return verifyBody(buf, tok), true
	}
}

func (s *mixedSource) check(reply []byte) error {
	switch s.last {
	case mixedOpen:
		tok, err := openedToken(reply)
		if err != nil {
			return err
		}
		s.opened = string(tok)
		return nil
	case mixedClose:
		return expectTrue.check(reply)
	default:
		return expectActive.check(reply)
	}
}
