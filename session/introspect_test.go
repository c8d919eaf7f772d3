package session_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/rpc"
)

// introspect calls session.introspect_session_token by name and by
// position and returns the result, which must be the same both ways.
func (s *service) introspect(t *testing.T, tok string) string {
	t.Helper()
	got := s.call(t, "session.introspect_session_token", tok)
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "session.introspect_session_token", "params": []string{tok}, "id": 1})
	result, rpcErr, _ := s.post(t, string(body))
	if rpcErr != nil || string(result) != got {
		t.Fatalf("introspect by position = %s, %v; by name %s", result, rpcErr, got)
	}
	return got
}

// An active token introspects to its claims in RFC 7662's shape, "sub"
// only when it has one; every token that verify calls inactive (closed,
// expired, forged, garbage) introspects to exactly {"active":false}.
func TestIntrospect(t *testing.T) {
	s := newService(t)
	other := newService(t) // a different key: its tokens are forged here

	withSub := s.openWith(t, `{"expires_in":3600,"subject":"alice@example.com"}`)
	noSub := s.openWith(t, `{"expires_in":3600}`)
	for _, tt := range []struct {
		name, tok, sub string
	}{{"with subject", withSub, "alice@example.com"}, {"without subject", noSub, ""}} {
		t.Run("active "+tt.name, func(t *testing.T) {
			p := payload(t, tt.tok)
			want := map[string]any{"active": true, "exp": p["exp"], "iat": p["iat"], "jti": p["jti"], "iss": "sessiond"}
			if tt.sub != "" {
				want["sub"] = tt.sub
			}
			got := s.introspect(t, tt.tok)
			var m map[string]any
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Fatal(err)
			}
			wantJSON, _ := json.Marshal(want)
			gotJSON, _ := json.Marshal(m)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("introspect = %s, want %s", got, wantJSON)
			}
			if exp, iat := p["exp"].(float64), p["iat"].(float64); exp-iat != 3600 {
				t.Errorf("exp - iat = %v, want 3600", exp-iat)
			}
		})
	}

	closed := s.openWith(t, `{"subject":"bob"}`)
	s.call(t, "session.close_session", closed)
	foreign := other.openWith(t, `{"subject":"alice@example.com"}`)
	tampered := withSub[:len(withSub)-3] + "AAA"
	parts := strings.Split(withSub, ".")
	resigned := parts[0] + "." + strings.Split(foreign, ".")[1] + "." + parts[2]
	for _, tt := range []struct{ name, tok string }{
		{"closed", closed},
		{"forged: another server's key", foreign},
		{"forged: tampered signature", tampered},
		{"forged: claims of another token", resigned},
		{"garbage: empty", ""},
		{"garbage: three dots", "a.b.c"},
		{"garbage: the API document's token", "00890640-ec03-4663-82ce-456ea993807d"},
		{"garbage: too large", strings.Repeat("x", 10000)},
	} {
		t.Run("inactive "+tt.name, func(t *testing.T) {
			if got := s.introspect(t, tt.tok); got != `{"active":false}` {
				t.Errorf("introspect = %s, want {\"active\":false}", got)
			}
			if got := s.call(t, "session.verify_session_token", tt.tok); got != `{"active":false}` {
				t.Errorf("verify = %s, want {\"active\":false}", got)
			}
		})
	}

	t.Run("inactive expired", func(t *testing.T) {
		tok := s.openWith(t, `{"expires_in":1,"subject":"carol"}`)
		deadline := time.Now().Add(10 * time.Second)
		for s.call(t, "session.verify_session_token", tok) == `{"active":true}` {
			if time.Now().After(deadline) {
				t.Fatal("a token of 1 s still active after 10 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := s.introspect(t, tok); got != `{"active":false}` {
			t.Errorf("introspect = %s, want {\"active\":false}", got)
		}
	})
	if got := s.introspect(t, noSub); !strings.HasPrefix(got, `{"active":true`) {
		t.Errorf("introspect(live token) at the end = %s, want active", got)
	}
}

// Bad params are -32602; a store that cannot be read is -32603 "internal
// error", never active; batches and notifications work as for verify.
func TestIntrospectErrorsAndBatches(t *testing.T) {
	s := newService(t)
	tok := s.openWith(t, `{"subject":"alice"}`)
	for _, params := range []string{`{}`, `{"token":null}`, `{"token":42}`, `[]`, `{"tok":"x"}`, `["a","b"]`} {
		_, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.introspect_session_token","params":`+params+`,"id":1}`)
		if rpcErr == nil || rpcErr.Code != rpc.CodeInvalidParams {
			t.Errorf("introspect(%s) error = %v, want -32602", params, rpcErr)
		}
	}

	body := `[{"jsonrpc":"2.0","method":"session.introspect_session_token","params":["` + tok + `"],"id":1},` +
		`{"jsonrpc":"2.0","method":"session.introspect_session_token","params":{"token":"x"},"id":2},` +
		`{"jsonrpc":"2.0","method":"session.introspect_session_token","params":["` + tok + `"]}]`
	resp, err := http.Post(s.url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var replies []struct {
		Result json.RawMessage `json:"result"`
		ID     int             `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&replies)
	resp.Body.Close()
	if err != nil || len(replies) != 2 || replies[0].ID != 1 || !strings.Contains(string(replies[0].Result), `"sub":"alice"`) ||
		replies[1].ID != 2 || string(replies[1].Result) != `{"active":false}` {
		t.Errorf("batch replies = %+v, %v, want id 1 active with sub alice, id 2 inactive, no reply to the notification", replies, err)
	}
	resp, err = http.Post(s.url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"session.introspect_session_token","params":["`+tok+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("notification: HTTP %d, want 204", resp.StatusCode)
	}

	s.store.Close()
	result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.introspect_session_token","params":["`+tok+`"],"id":1}`)
	if rpcErr == nil || rpcErr.Code != rpc.CodeInternalError || rpcErr.Message != "internal error" {
		t.Errorf("introspect with the store closed = %s, %v, want -32603 internal error", result, rpcErr)
	}
}
