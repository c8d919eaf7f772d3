package session_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// closeAll calls session.close_all_sessions with params (JSON) and fails
// the test unless the result is true.
func (s *service) closeAll(t *testing.T, params string) {
	t.Helper()
	result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.close_all_sessions","params":`+params+`,"id":1}`)
	if rpcErr != nil || string(result) != "true" {
		t.Fatalf("close_all_sessions(%s) = %s, %v, want true", params, result, rpcErr)
	}
}

// wantActive fails the test unless verify and introspect both say active
// (want true) or both say exactly {"active":false}.
func (s *service) wantActive(t *testing.T, tok string, want bool) {
	t.Helper()
	v := s.call(t, "session.verify_session_token", tok)
	in := s.introspect(t, tok)
	if want && (v != `{"active":true}` || !strings.HasPrefix(in, `{"active":true,`)) ||
		!want && (v != `{"active":false}` || in != `{"active":false}`) {
		t.Errorf("verify = %s, introspect = %s, want active %v", v, in, want)
	}
}

// openMany opens n sessions of subject ("" for none), 8 at a time.
func (s *service) openMany(t *testing.T, subject string, n int) []string {
	t.Helper()
	params := `{"expires_in":3600}`
	if subject != "" {
		b, _ := json.Marshal(map[string]any{"expires_in": 3600, "subject": subject})
		params = string(b)
	}
	toks := make([]string, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				toks[i] = s.openWith(t, params)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return toks
}

// waitNextSecond returns once the clock has passed the second of after.
func waitNextSecond(after time.Time) {
	time.Sleep(time.Until(after.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}

// close_all_sessions of a subject with 50 open sessions makes all 50
// inactive on verify and introspect, and only those: another subject's
// sessions, sessions without a subject and a subject that differs only in
// case stay active, and so does a session of the same subject opened in a
// later second.
func TestCloseAllSessions(t *testing.T) {
	s := newService(t)
	alice := s.openMany(t, "alice@example.com", 50)
	bob := s.openMany(t, "bob@example.com", 5)
	none := s.openMany(t, "", 3)
	upper := s.openMany(t, "Alice@example.com", 1)
	for _, tok := range alice[:3] {
		s.wantActive(t, tok, true)
	}

	s.closeAll(t, `{"subject":"alice@example.com"}`)
	called := time.Now()
	for i, tok := range alice {
		s.wantActive(t, tok, false)
		if t.Failed() {
			t.Fatalf("session %d of alice is still active", i)
		}
	}
	for _, tok := range append(append(bob, none...), upper...) {
		s.wantActive(t, tok, true)
	}
	// Closing a session closed this way is true and writes nothing.
	if n, _ := s.store.Len(context.Background()); n != 0 {
		t.Errorf("store Len() = %d before any close_session, want 0", n)
	}
	if got := s.call(t, "session.close_session", alice[0]); got != "true" {
		t.Errorf("close_session(cut-off token) = %s, want true", got)
	}

	// Idempotent, by position too; sessions opened in a later second stay
	// active, however often the call is repeated for the past.
	s.closeAll(t, `["alice@example.com"]`)
	called = time.Now()
	waitNextSecond(called)
	later := s.openWith(t, `{"subject":"alice@example.com"}`)
	s.wantActive(t, later, true)
	for _, tok := range alice {
		s.wantActive(t, tok, false)
	}

	// A later call moves the cutoff forward: the later session closes too.
	waitNextSecond(time.Now())
	s.closeAll(t, `{"subject":"alice@example.com"}`)
	s.wantActive(t, later, false)
	for _, tok := range bob {
		s.wantActive(t, tok, true)
	}
}

// settable is a clock the test moves.
type settable struct{ ns atomic.Int64 }

func (c *settable) now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *settable) set(at time.Time)     { c.ns.Store(at.UnixNano()) }
func newSettable(at time.Time) *settable { c := &settable{}; c.set(at); return c }

// The same-second rule, exactly: a token whose iat is the second of the
// call is closed, whether it was opened before or after the call within
// that second; one whose iat is the next second is not.
func TestCloseAllSameSecond(t *testing.T) {
	dir := t.TempDir()
	store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() error = %v", err)
	}
	t.Cleanup(func() { store.Close() })
	sec := time.Now().Truncate(time.Second).Add(time.Minute) // ahead of the store's own clock, never behind
	clock := newSettable(sec.Add(100 * time.Millisecond))
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: session.DefaultMaxExpiresIn}, keys.KeyringOptions{Now: clock.now})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	handler := rpc.NewHandler(session.New(store, ring, session.WithClock(clock.now)), rpc.HandlerOptions{})
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	s := &service{url: srv.URL, store: store, ring: ring}

	before := s.openWith(t, `{"subject":"dave"}`) // at sec + 0.1 s
	clock.set(sec.Add(500 * time.Millisecond))
	s.closeAll(t, `{"subject":"dave"}`) // at sec + 0.5 s
	clock.set(sec.Add(999 * time.Millisecond))
	sameSecond := s.openWith(t, `{"subject":"dave"}`) // after the call, same second
	clock.set(sec.Add(time.Second))
	nextSecond := s.openWith(t, `{"subject":"dave"}`)

	s.wantActive(t, before, false)
	s.wantActive(t, sameSecond, false)
	s.wantActive(t, nextSecond, true)
	if p := payload(t, sameSecond); p["iat"] != float64(sec.Unix()) {
		t.Fatalf("iat = %v, want %d: the clock did not take", p["iat"], sec.Unix())
	}
}

// The cutoff is on disk before the reply: closed and reopened, the store
// still has it, and the sessions stay closed.
func TestCloseAllSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() (*service, func()) {
		store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
		if err != nil {
			t.Fatalf("OpenBadger() error = %v", err)
		}
		ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: session.DefaultMaxExpiresIn}, keys.KeyringOptions{})
		if err != nil {
			t.Fatalf("OpenKeyring() error = %v", err)
		}
		srv := httptest.NewServer(rpc.NewHandler(session.New(store, ring), rpc.HandlerOptions{}))
		return &service{url: srv.URL, store: store, ring: ring}, func() { srv.Close(); store.Close() }
	}
	s, stop := open()
	alice := s.openMany(t, "alice", 5)
	bob := s.openMany(t, "bob", 2)
	s.closeAll(t, `{"subject":"alice"}`)
	stop()

	s, stop = open()
	defer stop()
	for _, tok := range alice {
		s.wantActive(t, tok, false)
	}
	for _, tok := range bob {
		s.wantActive(t, tok, true)
	}
}

// A bad subject is -32602 saying what is allowed, and writes nothing.
func TestCloseAllInvalidSubject(t *testing.T) {
	s := newService(t)
	tok := s.openWith(t, `{"subject":"x"}`)
	const want = "subject must be a string of 1 to 256 bytes of valid UTF-8 without control characters"
	const required = "subject is required: a string of 1 to 256 bytes of valid UTF-8 without control characters"
	for _, tt := range []struct{ params, want string }{
		{`{"subject":""}`, want},
		{`{"subject":"` + strings.Repeat("x", 257) + `"}`, want},
		{`{"subject":"a\ud800"}`, want},
		{`{"subject":"a\u0000"}`, want},
		{`{"subject":"a\u001fb"}`, want},
		{`{"subject":"a\u009fb"}`, want},
		{`{"subject":42}`, want},
		{`{"subject":{"x":"alice"}}`, want},
		{`{"subject":["x"]}`, want},
		{`[42]`, want},
		{`{"subject":null}`, required},
		{`{}`, required},
		{`[]`, required},
	} {
		result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.close_all_sessions","params":`+tt.params+`,"id":1}`)
		if rpcErr == nil || rpcErr.Code != rpc.CodeInvalidParams || rpcErr.Message != tt.want {
			t.Errorf("close_all_sessions(%.40s) = %s, %v, want -32602 %q", tt.params, result, rpcErr, tt.want)
		}
	}
	for _, params := range []string{`{"subject":"x","token":"y"}`, `["x","y"]`} {
		if _, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.close_all_sessions","params":`+params+`,"id":1}`); rpcErr == nil || rpcErr.Code != rpc.CodeInvalidParams {
			t.Errorf("close_all_sessions(%s) error = %v, want -32602", params, rpcErr)
		}
	}
	s.wantActive(t, tok, true)
}

// close_all_sessions in a batch, and as a notification (executed, not
// answered).
func TestCloseAllBatchAndNotification(t *testing.T) {
	s := newService(t)
	a, b := s.openWith(t, `{"subject":"a"}`), s.openWith(t, `{"subject":"b"}`)
	body := `[{"jsonrpc":"2.0","method":"session.close_all_sessions","params":{"subject":"a"},"id":1},` +
		`{"jsonrpc":"2.0","method":"session.close_all_sessions","params":{"subject":""},"id":2}]`
	resp, err := http.Post(s.url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var replies []struct {
		Result json.RawMessage `json:"result"`
		Error  *rpc.Error      `json:"error"`
		ID     int             `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&replies)
	resp.Body.Close()
	if err != nil || len(replies) != 2 || string(replies[0].Result) != "true" || replies[1].Error == nil || replies[1].Error.Code != rpc.CodeInvalidParams {
		t.Errorf("batch replies = %+v, %v, want true and -32602", replies, err)
	}
	s.wantActive(t, a, false)
	s.wantActive(t, b, true)

	resp, err = http.Post(s.url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"session.close_all_sessions","params":["b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("notification: HTTP %d, want 204", resp.StatusCode)
	}
	s.wantActive(t, b, false)
}

// When the cutoffs cannot be read, verify and introspect of a token with a
// subject answer -32603, never active (the fault store says "no cutoff"
// with its error); a token without a subject needs no cutoff and still
// answers. When the store cannot be written, close_all_sessions answers
// -32603 and nothing is cut off.
func TestCloseAllStoreFailure(t *testing.T) {
	s := newFaultService(t)
	data, err := s.send(`{"jsonrpc":"2.0","method":"session.open_session","params":{"subject":"erin"},"id":1}`)
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Result session.OpenResult }
	if err := json.Unmarshal(data, &r); err != nil || r.Result.AccessToken == "" {
		t.Fatalf("open_session = %s, %v", data, err)
	}
	withSub, noSub := r.Result.AccessToken, s.open(t)

	s.store.failCutoffs.Store(true)
	for _, method := range []string{faultVerify, "session.introspect_session_token"} {
		s.want(t, method, withSub, faultInternal)
	}
	s.want(t, faultVerify, noSub, faultActive)
	s.store.failCutoffs.Store(false)

	s.store.failWrites.Store(true)
	data, err = s.send(`{"jsonrpc":"2.0","method":"session.close_all_sessions","params":["erin"],"id":1}`)
	var reply faultReply
	if err != nil || json.Unmarshal(data, &reply) != nil || reply.Error == nil || reply.Error.Code != rpc.CodeInternalError || reply.Error.Message != "internal error" {
		t.Errorf("close_all_sessions with writes failing = %s, %v, want -32603 internal error", data, err)
	}
	s.store.failWrites.Store(false)
	s.want(t, faultVerify, withSub, faultActive)

	s.store.cutOffDiskFull.Store(true)
	data, err = s.send(`{"jsonrpc":"2.0","method":"session.close_all_sessions","params":["erin"],"id":1}`)
	reply = faultReply{}
	const full = "internal error: the revocation list cannot be written (disk full); the sessions are not closed, retry later"
	if err != nil || json.Unmarshal(data, &reply) != nil || reply.Error == nil || reply.Error.Code != rpc.CodeInternalError || reply.Error.Message != full {
		t.Errorf("close_all_sessions on a full disk = %s, %v, want -32603 %q", data, err, full)
	}
	s.store.cutOffDiskFull.Store(false)
	s.want(t, faultVerify, withSub, faultActive)
	if !strings.Contains(s.logs.String(), "disk on fire") {
		t.Errorf("the log does not have the store's error:\n%s", s.logs.String())
	}
}

// The cutoff lives until no token issued before it can still be alive (the
// cutoff second + max-expires-in + leeway + 1 s), then vanishes by TTL.
func TestCloseAllCutoffExpires(t *testing.T) {
	t.Parallel()
	s := newServiceMax(t, 2*time.Second)
	called := time.Now()
	s.closeAll(t, `{"subject":"carol"}`)
	ctx := context.Background()
	if _, ok, err := s.store.Cutoff(ctx, "carol"); err != nil || !ok {
		t.Fatalf("Cutoff() right after close_all_sessions = %v, %v, want a cutoff", ok, err)
	}
	// Badger's TTL is in whole seconds, rounded up, plus the store's own
	// second: gone at the latest 2 s + 1 s + 2 s of rounding after the call.
	deadline := called.Add(8 * time.Second)
	for {
		_, ok, err := s.store.Cutoff(ctx, "carol")
		if err != nil {
			t.Fatalf("Cutoff() = %v", err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cutoff is still there %v after close_all_sessions with max-expires-in 2s", time.Since(called))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if lived := time.Since(called); lived < 3*time.Second {
		t.Errorf("the cutoff vanished %v after the call, want it kept at least max-expires-in + 1 s", lived)
	}
}
