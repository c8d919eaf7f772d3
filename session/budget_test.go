package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// callerHeader names the caller of a test request: the test server puts it
// in the request's context, as sessiond's server puts a client's name or
// remote address.
const callerHeader = "X-Test-Caller"

type callerKey struct{}

// newBudgetService is a service whose callers each get a budget of
// perSecond failed signature checks, named by callerHeader, on clock.
func newBudgetService(t *testing.T, perSecond int, clock func() time.Time) *service {
	t.Helper()
	dir := t.TempDir()
	store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() error = %v", err)
	}
	t.Cleanup(func() { store.Close() })
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: session.DefaultMaxExpiresIn}, keys.KeyringOptions{})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	caller := func(ctx context.Context) string { name, _ := ctx.Value(callerKey{}).(string); return name }
	methods := session.New(store, ring, session.WithClock(clock), session.WithInvalidTokenBudget(perSecond, caller, nil))
	h := rpc.NewHandler(methods, rpc.HandlerOptions{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, r.Header.Get(callerHeader))))
	}))
	t.Cleanup(srv.Close)
	return &service{url: srv.URL, store: store, ring: ring}
}

// verifyAs sends verify_session_token of tok as caller and returns the
// result, or the error's code and message.
func (s *service) verifyAs(t *testing.T, caller, tok string) string {
	t.Helper()
	req, err := http.NewRequest("POST", s.url, strings.NewReader(`{"jsonrpc":"2.0","method":"session.verify_session_token","params":[`+jsonQuote(tok)+`],"id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(callerHeader, caller)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *rpc.Error      `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		t.Fatalf("verify as %s: HTTP %d: %v", caller, resp.StatusCode, err)
	}
	if reply.Error != nil {
		return fmt.Sprintf("error %d %s", reply.Error.Code, reply.Error.Message)
	}
	return string(reply.Result)
}

// forge returns tok with its signature altered: well formed, authentic to
// nobody, so that refusing it costs a full signature check.
func forge(tok string, i int) string {
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := []byte(sig)
	b[i%(len(b)-1)] = alphabet[(strings.IndexByte(alphabet, b[i%(len(b)-1)])+1+i/len(b))%len(alphabet)]
	return tok[:len(tok)-len(sig)] + string(b)
}

// A caller that spent its budget of failed signature checks gets -32005 for
// tokens the server has not seen before, without a check, while tokens seen
// before still answer for it, other callers are served as always, and the
// budget refills with time.
func TestInvalidTokenBudget(t *testing.T) {
	clock := newSettable(time.Now())
	s := newBudgetService(t, 10, clock.now)
	seen, fresh, other := s.open(t, "3600"), s.open(t, "3600"), s.open(t, "3600")
	if got := s.verifyAs(t, "mallory", seen); got != `{"active":true}` {
		t.Fatalf("verify of a valid token = %s, want active", got)
	}

	for i := range 10 {
		if got := s.verifyAs(t, "mallory", forge(seen, i)); got != `{"active":false}` {
			t.Fatalf("forged token %d within the budget = %s, want {\"active\":false}", i, got)
		}
	}
	const refused = "too many invalid tokens, retry later"
	if got := s.verifyAs(t, "mallory", forge(seen, 10)); !strings.Contains(got, refused) || !strings.Contains(got, "-32005") {
		t.Errorf("forged token past the budget = %s, want error -32005 %q", got, refused)
	}
	if got := s.verifyAs(t, "mallory", fresh); !strings.Contains(got, "-32005") {
		t.Errorf("a valid token never seen, past the budget = %s, want error -32005", got)
	}
	if got := s.verifyAs(t, "mallory", seen); got != `{"active":true}` {
		t.Errorf("a token seen before, past the budget = %s, want active", got)
	}
	if got := s.verifyAs(t, "alice", other); got != `{"active":true}` {
		t.Errorf("another caller's new valid token = %s, want active", got)
	}
	if got := s.verifyAs(t, "alice", forge(other, 3)); got != `{"active":false}` {
		t.Errorf("another caller's forged token = %s, want {\"active\":false}", got)
	}
	// Garbage costs no signature check, and so nothing from the budget.
	for range 20 {
		if got := s.verifyAs(t, "bob", "not.a.token"); got != `{"active":false}` {
			t.Fatalf("garbage = %s, want {\"active\":false}", got)
		}
	}
	if got := s.verifyAs(t, "bob", s.open(t, "60")); got != `{"active":true}` {
		t.Errorf("after garbage, a new valid token = %s, want active", got)
	}

	clock.set(clock.now().Add(150 * time.Millisecond)) // 1.5 checks back
	if got := s.verifyAs(t, "mallory", fresh); got != `{"active":true}` {
		t.Errorf("a new valid token after the budget refilled = %s, want active", got)
	}
	if got := s.verifyAs(t, "mallory", forge(seen, 11)); got != `{"active":false}` {
		t.Errorf("a forged token after the budget refilled = %s, want {\"active\":false}", got)
	}
	if got := s.verifyAs(t, "mallory", forge(seen, 12)); !strings.Contains(got, "-32005") {
		t.Errorf("the next forged token = %s, want -32005: the refill was half spent", got)
	}
}

// Introspection shares verification's budget; close_session, which answers
// true for any well-formed request, is never refused by it.
func TestInvalidTokenBudgetIntrospectAndClose(t *testing.T) {
	clock := newSettable(time.Now())
	s := newBudgetService(t, 2, clock.now)
	tok := s.open(t, "3600")
	s.verifyAs(t, "", forge(tok, 1))
	s.verifyAs(t, "", forge(tok, 2))
	_, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.introspect_session_token","params":[`+jsonQuote(forge(tok, 3))+`],"id":1}`)
	if rpcErr == nil || rpcErr.Code != session.CodeTooManyInvalid {
		t.Errorf("introspect past the budget: error %v, want code %d", rpcErr, session.CodeTooManyInvalid)
	}
	if got := s.call(t, "session.close_session", forge(tok, 4)); got != "true" {
		t.Errorf("close_session past the budget = %s, want true", got)
	}
}
