package token

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
)

// decodeSeeds are JSON texts for the fuzzers of the strict decoder: the
// shapes sessiond writes and the edges of the grammar.
var decodeSeeds = []string{
	`{"alg":"EdDSA","kid":"abc","typ":"session+jwt"}`,
	`{"iss":"sessiond","sub":"a\"b\\c","exp":1767225600,"iat":1764633600,"jti":"0b7e6f1e-7d1a-4c1e-9a51-0c6a3f3f1f00"}`,
	` { "alg" : "\u0045dDSA" , "crit" : [ "x" ] , "x":{"y":[1,-2.5e+3,true,false,null]} } `,
	`{"sub":"\ud83d\ude00\ud800x","aud":["a","b"],"nbf":0}`,
	`{"exp":01}`, `{"exp":1.0}`, `{"a":1,}`, `{"a" 1}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{}`, `{`, `[]`, `{"a":1}x`,
	`{"a":1,"a":2}`, `{"ISS":"x"}`, `{"a":[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]}`, "{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}",
}

// FuzzParseHeader checks parseHeader against encoding/json: whatever it
// accepts is valid JSON, which encoding/json reads to the same alg, typ and
// kid (on valid UTF-8, which encoding/json would otherwise alter), and the
// same presence of crit; what is not valid JSON it refuses.
func FuzzParseHeader(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data) // parseHeader unescapes in place
		h, err := parseHeader(data)
		if !json.Valid(in) {
			if err == nil {
				t.Fatalf("parseHeader(%q) = %+v, nil; encoding/json says it is not JSON", in, h)
			}
			return
		}
		if err != nil {
			return // a duplicate, a limit, a case variant: stricter
		}
		var m map[string]any
		if err := json.Unmarshal(in, &m); err != nil {
			t.Fatalf("parseHeader(%q) accepted what encoding/json refuses: %v", in, err)
		}
		if !utf8.Valid(in) {
			return
		}
		for _, f := range []struct {
			name string
			got  []byte
			has  bool
		}{{"alg", h.alg, h.hasAlg}, {"typ", h.typ, h.hasTyp}, {"kid", h.kid, h.hasKid}} {
			v, ok := m[f.name]
			if ok != f.has {
				t.Fatalf("parseHeader(%q): %s present %v, encoding/json %v", in, f.name, f.has, ok)
			}
			s, isString := v.(string)
			if isString != (f.got != nil) || string(f.got) != s {
				t.Fatalf("parseHeader(%q): %s = %q, encoding/json %#v", in, f.name, f.got, v)
			}
		}
		if _, ok := m["crit"]; ok != h.crit {
			t.Fatalf("parseHeader(%q): crit %v, encoding/json %v", in, h.crit, ok)
		}
	})
}

// FuzzParseClaims checks parseClaims against encoding/json as
// FuzzParseHeader does parseHeader: iss, sub and jti read the same, and
// the dates are the integers encoding/json reads.
func FuzzParseClaims(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		c, err := parseClaims(data)
		if !json.Valid(in) {
			if err == nil {
				t.Fatalf("parseClaims(%q) = %+v, nil; encoding/json says it is not JSON", in, c)
			}
			return
		}
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(in, &m); err != nil {
			t.Fatalf("parseClaims(%q) accepted what encoding/json refuses: %v", in, err)
		}
		for name := range m {
			for _, reg := range registered {
				if name != reg && strings.EqualFold(name, reg) {
					t.Fatalf("parseClaims(%q) accepted member %q beside %q", in, name, reg)
				}
			}
		}
		if !utf8.Valid(in) {
			return
		}
		for _, f := range []struct {
			name string
			got  []byte
			has  bool
		}{{"iss", c.iss, c.hasIss}, {"sub", c.sub, c.hasSub}, {"jti", c.jti, c.hasJti}} {
			raw, ok := m[f.name]
			if ok != f.has {
				t.Fatalf("parseClaims(%q): %s present %v, encoding/json %v", in, f.name, f.has, ok)
			}
			var s string
			if ok && (json.Unmarshal(raw, &s) != nil || raw[0] != '"' || s != string(f.got)) {
				t.Fatalf("parseClaims(%q): %s = %q, encoding/json %s", in, f.name, f.got, raw)
			}
		}
		for _, f := range []struct {
			name string
			got  int64
			has  bool
		}{{"exp", c.exp, c.hasExp}, {"iat", c.iat, c.hasIat}, {"nbf", c.nbf, c.hasNbf}} {
			raw, ok := m[f.name]
			if ok != f.has {
				t.Fatalf("parseClaims(%q): %s present %v, encoding/json %v", in, f.name, f.has, ok)
			}
			var n int64
			if ok && (json.Unmarshal(raw, &n) != nil || n != f.got || n < 0 || n > maxNumericDate) {
				t.Fatalf("parseClaims(%q): %s = %d, encoding/json %s", in, f.name, f.got, raw)
			}
		}
	})
}

// FuzzParseUUID checks parseUUID against uuid.Parse on 36-character input.
func FuzzParseUUID(f *testing.F) {
	for _, s := range []string{"0b7e6f1e-7d1a-4c1e-9a51-0c6a3f3f1f00", "0B7E6F1E-7D1A-4C1E-9A51-0C6A3F3F1F00", "0b7e6f1e-7d1a-4c1e-9a51-0c6a3f3f1f0g", "0b7e6f1e7-d1a-4c1e-9a51-0c6a3f3f1f00", "{b7e6f1e-7d1a-4c1e-9a51-0c6a3f3f1f0}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUUID([]byte(s))
		want, err := uuid.Parse(s)
		if len(s) != 36 {
			if ok {
				t.Fatalf("parseUUID(%q) = %v, true; want false", s, got)
			}
			return
		}
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("parseUUID(%q) = %v, %v; uuid.Parse %v, %v", s, got, ok, want, err)
		}
	})
}
