package session_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// The observer learns each check's result as the metrics name it, and the
// id of an authentic token only, for every method and every reason a token
// is not active.
func TestObserver(t *testing.T) {
	dir := t.TempDir()
	store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() error = %v", err)
	}
	t.Cleanup(func() { store.Close() })
	var offset atomic.Int64 // the clock's lead over time.Now
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: 24 * time.Hour}, keys.KeyringOptions{Now: now})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	other, err := keys.OpenKeyring(filepath.Join(t.TempDir(), "keys.json"), keys.Policy{MaxTokenLifetime: 24 * time.Hour}, keys.KeyringOptions{})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	var (
		mu     sync.Mutex
		events []session.Event
	)
	observe := func(_ context.Context, e session.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	ours := rpc.NewHandler(session.New(store, ring, session.WithClock(now), session.WithObserver(observe),
		session.WithMaxExpiresIn(24*time.Hour)), rpc.HandlerOptions{})
	// Token makers the observer does not watch: another issuer on our key,
	// a key verifiers do not know, and a clock an hour ahead.
	otherIssuer := rpc.NewHandler(session.New(store, ring, session.WithIssuer("elsewhere")), rpc.HandlerOptions{})
	otherKey := rpc.NewHandler(session.New(store, other), rpc.HandlerOptions{})
	future := rpc.NewHandler(session.New(store, ring, session.WithClock(func() time.Time { return now().Add(time.Hour) })), rpc.HandlerOptions{})

	call := func(t *testing.T, h *rpc.Handler, method, params string) json.RawMessage {
		t.Helper()
		var reply struct {
			Result json.RawMessage
			Error  *rpc.Error
		}
		body := serveBody(t, h, `{"jsonrpc":"2.0","method":"`+method+`","params":`+params+`,"id":1}`)
		if err := json.Unmarshal(body, &reply); err != nil {
			t.Fatalf("%s: %v in %s", method, err, body)
		}
		if reply.Error != nil && reply.Error.Code != rpc.CodeInternalError {
			t.Fatalf("%s(%s) error = %v", method, params, reply.Error)
		}
		return reply.Result
	}
	open := func(t *testing.T, h *rpc.Handler, params string) (tok string, jti uuid.UUID) {
		t.Helper()
		var res session.OpenResult
		json.Unmarshal(call(t, h, "session.open_session", params), &res)
		if strings.Count(res.AccessToken, ".") != 2 {
			t.Fatalf("open_session: no token")
		}
		return res.AccessToken, jtiOf(t, res.AccessToken)
	}
	tokParams := func(tok string) string { return `{"token":"` + tok + `"}` }

	live, liveID := open(t, ours, `{"expires_in":3600}`)
	closed, closedID := open(t, ours, `{"expires_in":3600}`)
	short, _ := open(t, ours, `{"expires_in":1}`)
	alice, aliceID := open(t, ours, `{"expires_in":3600,"subject":"alice"}`)
	mu.Lock()
	for i, id := range []uuid.UUID{liveID, closedID, jtiOf(t, short), aliceID} {
		if want := (session.Event{Method: "session.open_session", ID: id}); i >= len(events) || events[i] != want {
			t.Errorf("open_session events = %+v, want event %d %+v", events, i, want)
		}
	}
	events = nil
	mu.Unlock()
	call(t, ours, "session.close_session", tokParams(closed))
	call(t, ours, "session.close_all_sessions", `{"subject":"alice"}`)
	call(t, ours, "session.close_session", tokParams("garbage"))
	otherIss, _ := open(t, otherIssuer, `{"expires_in":3600}`)
	unknownKey, _ := open(t, otherKey, `{"expires_in":3600}`)
	notYet, _ := open(t, future, `{"expires_in":3600}`)
	parts := strings.Split(live, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[2])
	raw[0] ^= 1
	sig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(raw)

	const verify, introspect = "session.verify_session_token", "session.introspect_session_token"
	checks := []struct {
		tok  string
		want session.Event
	}{
		{live, session.Event{Method: verify, Result: session.ResultActive, ID: liveID}},
		{closed, session.Event{Method: verify, Result: session.ResultRevoked, ID: closedID}},
		{alice, session.Event{Method: introspect, Result: session.ResultRevoked, ID: aliceID}},
		{"garbage", session.Event{Method: verify, Result: session.ResultMalformed}},
		{sig, session.Event{Method: verify, Result: session.ResultSignature}},
		{unknownKey, session.Event{Method: introspect, Result: session.ResultUnknownKey}},
		{otherIss, session.Event{Method: verify, Result: session.ResultIssuer}},
		{notYet, session.Event{Method: verify, Result: session.ResultOther}},
	}
	for _, c := range checks {
		call(t, ours, c.want.Method, tokParams(c.tok))
	}
	offset.Store(int64(2 * time.Second))
	call(t, ours, verify, tokParams(short))
	store.Close()
	call(t, ours, introspect, tokParams(live)) // the store cannot answer: internal error

	want := []session.Event{
		{Method: "session.close_session", ID: closedID},
		{Method: "session.close_all_sessions"},
		{Method: "session.close_session"},
	}
	for _, c := range checks {
		want = append(want, c.want)
	}
	want = append(want, session.Event{Method: verify, Result: session.ResultExpired},
		session.Event{Method: introspect, Result: session.ResultOther, ID: liveID})
	mu.Lock()
	defer mu.Unlock()
	if len(events) != len(want) {
		t.Fatalf("events = %+v, want %+v", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, events[i], want[i])
		}
	}
}

// serveBody runs one request through h in-process and returns the body.
func serveBody(t *testing.T, h *rpc.Handler, body string) []byte {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	return w.Body.Bytes()
}

// jtiOf reads a token's "jti" without verifying it.
func jtiOf(t *testing.T, tok string) uuid.UUID {
	t.Helper()
	var c struct{ Jti string }
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(c.Jti)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
