package rpc

import (
	"encoding/json"
	"strings"
	"testing"
)

// validSeeds are the edges of the grammar for FuzzValidJSON.
var validSeeds = []string{
	``, ` `, `1`, `-0`, `-`, `01`, `1.`, `1.5e+3`, `1e`, `.5`, `"a"`, `"\u00e9\ud83d"`, `"\x"`, `"\u12g4"`, "\"a\x01\"", "\"\xff\"",
	`true`, `tru`, `nullx`, `[]`, `[ ]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{ }`, `{"a":1}`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{1:2}`,
	`{"a":[1,{"b":null}],"c":"d"}`, ` {"jsonrpc":"2.0","method":"m","params":{"token":"eyJhbGciOiJFZERTQSJ9.e30.AAAA"},"id":1} `,
	`[1]]`, `[[1]`, `{"a":1}}`, `"abcdefghijklmnop\"qrstuvwxyz"`, `"abcdefghijklmnopq` + "\t" + `rstuvwxyz"`,
}

// FuzzValidJSON checks validJSON against json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid %v", b, got, want)
		}
	})
}

func TestValidJSONNesting(t *testing.T) {
	for _, n := range []int{maxNesting - 1, maxNesting, maxNesting + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			for _, inner := range []string{"1", "[]", "{}"} {
				b := []byte(strings.Repeat(open, n) + inner + strings.Repeat(close, n))
				if got, want := validJSON(b), json.Valid(b); got != want {
					t.Errorf("validJSON(%d x %q %s) = %v, json.Valid %v", n, open, inner, got, want)
				}
			}
		}
	}
	for _, s := range validSeeds {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%q) = %v, json.Valid %v", s, got, want)
		}
	}
}
