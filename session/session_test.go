package session_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// service is the whole session API over a real HTTP server on loopback,
// with the real key file and Badger store in a temporary directory.
type service struct {
	url     string
	handler http.Handler
	store   *revocation.Badger
	ring    *keys.Keyring // to forge tokens with the server's own key, as only a bug could
	client  *client.Client
}

func newService(t testing.TB) *service {
	t.Helper()
	return newServiceMax(t, 0)
}

// newServiceMax is newService with session.WithMaxExpiresIn (and the keys'
// MaxTokenLifetime) set to maxExpiresIn; zero means the default.
func newServiceMax(t testing.TB, maxExpiresIn time.Duration) *service {
	t.Helper()
	dir := t.TempDir()
	lifetime := maxExpiresIn
	if lifetime == 0 {
		lifetime = session.DefaultMaxExpiresIn
	}
	store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() error = %v", err)
	}
	t.Cleanup(func() { store.Close() })
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: lifetime}, keys.KeyringOptions{})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	handler := rpc.NewHandler(session.New(store, ring, session.WithMaxExpiresIn(maxExpiresIn)), rpc.HandlerOptions{})
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &service{url: srv.URL, handler: handler, store: store, ring: ring, client: client.New(srv.URL, srv.Client())}
}

// post sends body and decodes the single JSON-RPC response.
func (s *service) post(t *testing.T, body string) (result json.RawMessage, rpcErr *rpc.Error, id string) {
	t.Helper()
	resp, err := http.Post(s.url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d %s", body, resp.StatusCode, data)
	}
	var reply struct {
		JSONRPC string          `json:"jsonrpc"`
		Result  json.RawMessage `json:"result"`
		Error   *rpc.Error      `json:"error"`
		ID      json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(data, &reply); err != nil || reply.JSONRPC != "2.0" {
		t.Fatalf("POST %s: reply %s: %v", body, data, err)
	}
	return reply.Result, reply.Error, string(reply.ID)
}

func (s *service) open(t *testing.T, expiresIn string) string {
	t.Helper()
	result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.open_session","params":{"expires_in":`+expiresIn+`},"id":1}`)
	if rpcErr != nil {
		t.Fatalf("open_session(%s) error = %v", expiresIn, rpcErr)
	}
	var res session.OpenResult
	if err := json.Unmarshal(result, &res); err != nil {
		t.Fatal(err)
	}
	return res.AccessToken
}

func (s *service) call(t *testing.T, method, tok string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": map[string]string{"token": tok}, "id": 7})
	result, rpcErr, _ := s.post(t, string(body))
	if rpcErr != nil {
		t.Fatalf("%s error = %v", method, rpcErr)
	}
	return string(result)
}

// The three example requests of the specification sessiond was built to,
// verbatim, with the trailing comma its open_session example has (README,
// "Using the API with curl", shows that one).
func TestAPIExamples(t *testing.T) {
	s := newService(t)
	const apiToken = "00890640-ec03-4663-82ce-456ea993807d"
	examples := []struct {
		name, body string
		check      func(t *testing.T, result json.RawMessage)
	}{
		{"open_session", `{
"jsonrpc": "2.0",
"method": "session.open_session",
"params": {
"expires_in": null,
},
"id": "jsonrpc_id"
}`, func(t *testing.T, result json.RawMessage) {
			var res map[string]any
			json.Unmarshal(result, &res)
			if tok, _ := res["access_token"].(string); strings.Count(tok, ".") != 2 || res["expires_in"] != float64(2592000) || len(res) != 2 {
				t.Errorf("result = %s, want access_token (a JWT) and expires_in 2592000", result)
			}
		}},
		{"verify_session_token", `{
"jsonrpc": "2.0",
"method": "session.verify_session_token",
"params": {"token": "` + apiToken + `"},
"id": "jsonrpc_id"
}`, func(t *testing.T, result json.RawMessage) {
			if string(result) != `{"active":false}` {
				t.Errorf("result = %s, want {\"active\":false}", result)
			}
		}},
		{"close_session", `{
"jsonrpc": "2.0",
"method": "session.close_session",
"params": {"token": "` + apiToken + `"},
"id": "jsonrpc_id"
}`, func(t *testing.T, result json.RawMessage) {
			if string(result) != "true" {
				t.Errorf("result = %s, want true", result)
			}
		}},
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			result, rpcErr, id := s.post(t, ex.body)
			if rpcErr != nil {
				t.Fatalf("error = %v", rpcErr)
			}
			if id != `"jsonrpc_id"` {
				t.Errorf("id = %s, want \"jsonrpc_id\"", id)
			}
			ex.check(t, result)
		})
	}
	if n, err := s.store.Len(context.Background()); err != nil || n != 0 {
		t.Errorf("store Len() = %d, %v, want 0: closing an unissued token must write nothing", n, err)
	}
}

func TestSessionLifecycle(t *testing.T) {
	s := newService(t)
	tok := s.open(t, "null")
	other := s.open(t, "3600")
	if got := s.call(t, "session.verify_session_token", tok); got != `{"active":true}` {
		t.Fatalf("verify(open token) = %s, want active", got)
	}
	for range 2 { // idempotent
		if got := s.call(t, "session.close_session", tok); got != "true" {
			t.Fatalf("close = %s, want true", got)
		}
	}
	if got := s.call(t, "session.verify_session_token", tok); got != `{"active":false}` {
		t.Errorf("verify(closed token) = %s, want inactive", got)
	}
	if got := s.call(t, "session.verify_session_token", other); got != `{"active":true}` {
		t.Errorf("verify(other token) = %s, want active", got)
	}
	if n, _ := s.store.Len(context.Background()); n != 1 {
		t.Errorf("store Len() = %d, want 1", n)
	}
	// Forged and tampered tokens are closed already: true, nothing written.
	forged := other[:len(other)-3] + "AAA"
	for _, bad := range []string{forged, "", "a.b.c", strings.Repeat("x", 10000)} {
		if got := s.call(t, "session.close_session", bad); got != "true" {
			t.Errorf("close(%.20q) = %s, want true", bad, got)
		}
	}
	if n, _ := s.store.Len(context.Background()); n != 1 {
		t.Errorf("after closing forgeries store Len() = %d, want 1", n)
	}
}

func TestOpenExpiresIn(t *testing.T) {
	s := newService(t)
	tests := []struct {
		params string
		want   int64 // 0: invalid params
	}{
		{`{}`, 2592000},
		{`{"expires_in": null}`, 2592000},
		{`[]`, 2592000},
		{`[null]`, 2592000},
		{`{"expires_in": 3600}`, 3600},
		{`[3600]`, 3600},
		{`{"expires_in": 3600.0}`, 3600},
		{`{"expires_in": 3.6e3}`, 3600},
		{`{"expires_in": 1}`, 1},
		{`{"expires_in": 31536000}`, 31536000},
		{`{"expires_in": 31536001}`, 0},
		{`{"expires_in": 0}`, 0},
		{`{"expires_in": -5}`, 0},
		{`{"expires_in": 1.5}`, 0},
		{`{"expires_in": 1e300}`, 0},
		{`{"expires_in": 99999999999999999999999}`, 0},
		{`{"expires_in": "3600"}`, 0},
		{`{"expires_in": true}`, 0},
		{`{"expires_in": {}}`, 0},
		{`{"expire_in": 3600}`, 0},
		{`[3600, 1]`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.open_session","params":`+tt.params+`,"id":1}`)
			if tt.want == 0 {
				if rpcErr == nil || rpcErr.Code != rpc.CodeInvalidParams {
					t.Fatalf("result %s, error %v, want invalid params", result, rpcErr)
				}
				if strings.Contains(tt.params, "expires_in") && !strings.Contains(rpcErr.Message, "31536000") {
					t.Errorf("message %q does not say what is allowed", rpcErr.Message)
				}
				return
			}
			var res session.OpenResult
			if rpcErr != nil || json.Unmarshal(result, &res) != nil || res.ExpiresIn != tt.want {
				t.Fatalf("result %s, error %v, want expires_in %d", result, rpcErr, tt.want)
			}
		})
	}
	t.Run("params omitted", func(t *testing.T) {
		result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.open_session","id":1}`)
		if rpcErr != nil || !strings.Contains(string(result), `"expires_in":2592000`) {
			t.Errorf("result %s, error %v, want the default lifetime", result, rpcErr)
		}
	})
}

// A maximum below the 30-day default caps the default: expires_in null or
// absent grants the maximum, says so in expires_in, and the token's own
// lifetime (exp - iat) is no longer, so pruning keys by the maximum can
// never cut a granted session short.
func TestOpenDefaultCappedByMax(t *testing.T) {
	for _, tt := range []struct {
		max  time.Duration
		want int64
	}{
		{time.Hour, 3600},
		{90*time.Minute + 500*time.Millisecond, 5400}, // whole seconds only, rounded down
		{session.DefaultExpiresIn, 2592000},
		{session.DefaultExpiresIn + time.Hour, 2592000}, // a larger maximum leaves the default alone
	} {
		t.Run(tt.max.String(), func(t *testing.T) {
			s := newServiceMax(t, tt.max)
			for _, params := range []string{`{}`, `{"expires_in": null}`, `[]`, `[null]`, ``} {
				body := `{"jsonrpc":"2.0","method":"session.open_session","id":1}`
				if params != "" {
					body = `{"jsonrpc":"2.0","method":"session.open_session","params":` + params + `,"id":1}`
				}
				result, rpcErr, _ := s.post(t, body)
				var res session.OpenResult
				if rpcErr != nil || json.Unmarshal(result, &res) != nil || res.ExpiresIn != tt.want {
					t.Fatalf("params %s: result %s, error %v, want expires_in %d", params, result, rpcErr, tt.want)
				}
				var claims struct{ Exp, Iat int64 }
				payload, err := base64.RawURLEncoding.DecodeString(strings.Split(res.AccessToken, ".")[1])
				if err != nil || json.Unmarshal(payload, &claims) != nil {
					t.Fatalf("token payload %q: %v", payload, err)
				}
				if got := claims.Exp - claims.Iat; got != tt.want {
					t.Errorf("params %s: token lifetime exp - iat = %d s, want %d", params, got, tt.want)
				}
			}
			over := strconv.FormatInt(tt.want+1, 10)
			if tt.want < 2592000 {
				_, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.open_session","params":{"expires_in":`+over+`},"id":1}`)
				if rpcErr == nil || rpcErr.Code != rpc.CodeInvalidParams || !strings.Contains(rpcErr.Message, strconv.FormatInt(tt.want, 10)) {
					t.Errorf("expires_in %s: error %v, want invalid params naming the maximum %d", over, rpcErr, tt.want)
				}
			}
		})
	}
}

func TestTokenParam(t *testing.T) {
	s := newService(t)
	for _, method := range []string{"session.verify_session_token", "session.close_session"} {
		for _, params := range []string{`{}`, `[]`, `{"token": null}`, `{"token": 5}`, `[5]`, `{"token": ["x"]}`, `{"tok": "x"}`} {
			t.Run(method+" "+params, func(t *testing.T) {
				_, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"`+method+`","params":`+params+`,"id":1}`)
				if rpcErr == nil || rpcErr.Code != rpc.CodeInvalidParams {
					t.Errorf("error = %v, want invalid params", rpcErr)
				}
			})
		}
	}
	tok := s.open(t, "60")
	result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.verify_session_token","params":["`+tok+`"],"id":1}`)
	if rpcErr != nil || string(result) != `{"active":true}` {
		t.Errorf("verify by position = %s, %v, want active", result, rpcErr)
	}
}

// A short session goes inactive when it expires, and its revocation entry
// vanishes with it. (iat is truncated to the second, so a session of n
// seconds may have little more than n-1 left: 3 leaves room for the steps
// before it expires on a loaded machine.)
func TestExpiry(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	res, err := s.client.OpenSession(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.CloseSession(ctx, res.AccessToken); err != nil {
		t.Fatal(err)
	}
	live, err := s.client.OpenSession(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.store.Len(ctx); n != 1 {
		t.Fatalf("store Len() = %d, want 1", n)
	}
	if active, err := s.client.VerifySessionToken(ctx, live.AccessToken); !active || err != nil {
		t.Fatalf("verify = %v, %v, want active", active, err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for {
		active, err := s.client.VerifySessionToken(ctx, live.AccessToken)
		n, _ := s.store.Len(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !active && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 8s: active = %v, store Len() = %d, want inactive and 0", active, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.client.CloseSession(ctx, live.AccessToken); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.store.Len(ctx); n != 0 {
		t.Errorf("closing an expired token wrote an entry: Len() = %d", n)
	}
}

// When the revocation list cannot be read or written, verify and close
// answer internal error: never active, never a false true.
func TestStoreFailureFailsClosed(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	tok := s.open(t, "null")
	s.store.Close()
	for _, method := range []string{"session.verify_session_token", "session.close_session"} {
		t.Run(method, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": []string{tok}, "id": 1})
			result, rpcErr, _ := s.post(t, string(body))
			if rpcErr == nil || rpcErr.Code != rpc.CodeInternalError || rpcErr.Message != "internal error" {
				t.Errorf("result %s, error %v, want internal error", result, rpcErr)
			}
		})
	}
	var rpcErr *client.Error
	if _, err := s.client.VerifySessionToken(ctx, tok); !errors.As(err, &rpcErr) {
		t.Errorf("client error = %v, want *client.Error", err)
	}
}

func TestClient(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	res, err := s.client.OpenSession(ctx, 0)
	if err != nil || res.ExpiresIn != 2592000 {
		t.Fatalf("OpenSession() = %+v, %v", res, err)
	}
	if active, err := s.client.VerifySessionToken(ctx, res.AccessToken); !active || err != nil {
		t.Errorf("VerifySessionToken() = %v, %v, want true", active, err)
	}
	if err := s.client.CloseSession(ctx, res.AccessToken); err != nil {
		t.Errorf("CloseSession() error = %v", err)
	}
	if active, err := s.client.VerifySessionToken(ctx, res.AccessToken); active || err != nil {
		t.Errorf("after close VerifySessionToken() = %v, %v, want false", active, err)
	}
	var rpcErr *client.Error
	if _, err := s.client.OpenSession(ctx, -time.Second); !errors.As(err, &rpcErr) || rpcErr.Code != rpc.CodeInvalidParams {
		t.Errorf("OpenSession(-1s) error = %v, want invalid params", err)
	}
}

// syncBuffer is an io.Writer safe for a handler's concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WithClock is the clock of both issuing and verifying: under a clock fixed
// in 2020 a token opened for a minute is active, which it could not be if
// either side read the real clock (expired, or issued in the future).
func TestWithClock(t *testing.T) {
	dir := t.TempDir()
	store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() error = %v", err)
	}
	t.Cleanup(func() { store.Close() })
	then := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: time.Hour},
		keys.KeyringOptions{Now: func() time.Time { return then }})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	srv := httptest.NewServer(rpc.NewHandler(session.New(store, ring, session.WithClock(func() time.Time { return then })), rpc.HandlerOptions{}))
	t.Cleanup(srv.Close)
	cl := client.New(srv.URL, srv.Client())
	ctx := context.Background()
	res, err := cl.OpenSession(ctx, time.Minute)
	if err != nil {
		t.Fatalf("OpenSession() error = %v", err)
	}
	if active, err := cl.VerifySessionToken(ctx, res.AccessToken); !active || err != nil {
		t.Errorf("VerifySessionToken() under the same clock = %v, %v, want true", active, err)
	}
}
