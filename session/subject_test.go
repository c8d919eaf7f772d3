package session_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/token"
)

// openWith sends open_session with params (JSON) and returns the token.
func (s *service) openWith(t *testing.T, params string) string {
	t.Helper()
	result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.open_session","params":`+params+`,"id":1}`)
	if rpcErr != nil {
		t.Fatalf("open_session(%s) error = %v", params, rpcErr)
	}
	var res map[string]any
	if err := json.Unmarshal(result, &res); err != nil || len(res) != 2 {
		t.Fatalf("open_session(%s) = %s, want access_token and expires_in only", params, result)
	}
	return res["access_token"].(string)
}

// payload is the decoded claims segment of tok.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// subjectOf is the "sub" that the server's own key ring verifies in tok.
func (s *service) subjectOf(t *testing.T, tok string) string {
	t.Helper()
	c, err := token.NewVerifier(s.ring).Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	return c.Subject
}

// open_session with a subject, by name and by position, issues a token
// whose "sub" is the subject; without one (absent or null) the token has
// no "sub" at all, as before subjects existed.
func TestOpenSubject(t *testing.T) {
	s := newService(t)
	long := strings.Repeat("ß", 128) // 256 bytes
	for _, tt := range []struct{ name, params, want string }{
		{"by name", `{"expires_in":3600,"subject":"alice@example.com"}`, "alice@example.com"},
		{"by name, expires_in absent", `{"subject":"alice@example.com"}`, "alice@example.com"},
		{"by position", `[3600,"bob"]`, "bob"},
		{"256 bytes", `{"subject":"` + long + `"}`, long},
		{"escapes", `{"subject":"q\"uo\\te \u00e9 \ud83d\ude00"}`, `q"uo\te é 😀`},
		{"spaces and symbols", `{"subject":" <a&b> "}`, " <a&b> "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := s.openWith(t, tt.params)
			if got := s.subjectOf(t, tok); got != tt.want {
				t.Errorf("sub = %q, want %q", got, tt.want)
			}
			if got := s.call(t, "session.verify_session_token", tok); got != `{"active":true}` {
				t.Errorf("verify = %s, want {\"active\":true}", got)
			}
		})
	}
	for _, params := range []string{`{}`, `{"expires_in":60}`, `{"subject":null}`, `[60]`, `[60,null]`, `[]`, `null`} {
		t.Run("no subject "+params, func(t *testing.T) {
			tok := s.openWith(t, params)
			if p := payload(t, tok); len(p) != 4 || p["sub"] != nil {
				t.Errorf("claims = %v, want iss, exp, iat and jti only", p)
			}
		})
	}
}

// Anything but null or a string of 1 to 256 bytes of valid UTF-8 without
// control characters is -32602 saying what is allowed, and opens nothing.
func TestOpenSubjectInvalid(t *testing.T) {
	s := newService(t)
	const want = "subject must be null or a string of 1 to 256 bytes of valid UTF-8 without control characters"
	for _, tt := range []struct{ name, subject string }{
		{"empty", `""`},
		{"257 bytes", `"` + strings.Repeat("x", 257) + `"`},
		{"257 bytes of two-byte characters", `"` + strings.Repeat("é", 128) + `x"`},
		{"lone high surrogate", `"a\ud800b"`},
		{"lone low surrogate", `"\udc00"`},
		{"high surrogate at the end", `"a\ud83d"`},
		{"NUL", `"a\u0000b"`},
		{"newline", `"a\nb"`},
		{"tab", `"a\tb"`},
		{"DEL", "\"a\x7fb\""},
		{"C1 control", `"a\u0085b"`},
		{"number", `42`},
		{"object", `{"name":"alice"}`},
		{"array", `["alice"]`},
		{"boolean", `true`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, params := range []string{`{"subject":` + tt.subject + `}`, `[null,` + tt.subject + `]`} {
				result, rpcErr, _ := s.post(t, `{"jsonrpc":"2.0","method":"session.open_session","params":`+params+`,"id":1}`)
				if rpcErr == nil || rpcErr.Code != rpc.CodeInvalidParams || rpcErr.Message != want {
					t.Errorf("open_session(%s) = %s, %v, want -32602 %q", params, result, rpcErr, want)
				}
			}
		})
	}
	// Invalid UTF-8 sent as such makes the whole request invalid JSON
	// (RFC 8259): -32600, before any method runs.
	_, rpcErr, _ := s.post(t, "{\"jsonrpc\":\"2.0\",\"method\":\"session.open_session\",\"params\":{\"subject\":\"a\xffb\"},\"id\":1}")
	if rpcErr == nil || rpcErr.Code != rpc.CodeInvalidRequest {
		t.Errorf("open_session(invalid UTF-8 bytes) error = %v, want -32600", rpcErr)
	}
}
