package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

var algorithms = []keys.Algorithm{keys.EdDSA, keys.ES256, keys.RS256}

// publicKey generates a key of alg and returns its public half as the
// token package sees it.
func publicKey(t testing.TB, alg keys.Algorithm) token.PublicKey {
	t.Helper()
	k, err := keys.Generate(alg, 0, t0, t0)
	if err != nil {
		t.Fatalf("Generate(%s) error = %v", alg, err)
	}
	return token.PublicKey{ID: k.ID, Algorithm: string(k.Algorithm), Key: k.Public()}
}

func marshal(t testing.TB, pubs ...token.PublicKey) []byte {
	t.Helper()
	data, err := issue.MarshalJWKS(pubs)
	if err != nil {
		t.Fatalf("MarshalJWKS() error = %v", err)
	}
	return data
}

// privateMembers are the JWK members that carry private key material (RFC
// 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

func TestJWKSRoundTrip(t *testing.T) {
	var all []token.PublicKey
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			pub := publicKey(t, alg)
			all = append(all, pub)
			data := marshal(t, pub)
			set, err := token.ParseJWKS(data)
			if err != nil {
				t.Fatalf("ParseJWKS(%s) error = %v", data, err)
			}
			got := set.Keys()
			if len(got) != 1 || got[0].ID != pub.ID || got[0].Algorithm != pub.Algorithm {
				t.Fatalf("ParseJWKS() keys = %+v, want %s %s", got, pub.ID, pub.Algorithm)
			}
			if !reflect.DeepEqual(got[0].Key, pub.Key) {
				t.Errorf("ParseJWKS() key = %#v, want %#v", got[0].Key, pub.Key)
			}
			// The kid keys publishes is the RFC 7638 thumbprint of the key
			// that comes back.
			if kid, err := keys.Thumbprint(got[0].Key); err != nil || kid != pub.ID {
				t.Errorf("Thumbprint(parsed key) = %q, %v, want %q", kid, err, pub.ID)
			}
			alg, key, err := set.VerificationKey(context.Background(), pub.ID)
			if err != nil || alg != string(pub.Algorithm) || !reflect.DeepEqual(key, pub.Key) {
				t.Errorf("VerificationKey(%s) = %s, %v, %v", pub.ID, alg, key, err)
			}
			if _, _, err := set.VerificationKey(context.Background(), "nope"); err == nil {
				t.Error("VerificationKey(unknown kid) error = nil, want an error")
			}

			var doc struct{ Keys []map[string]any }
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			for _, m := range privateMembers {
				if _, ok := doc.Keys[0][m]; ok {
					t.Errorf("MarshalJWKS() has private member %q: %s", m, data)
				}
			}
			if doc.Keys[0]["use"] != "sig" || doc.Keys[0]["alg"] != string(alg) || doc.Keys[0]["kid"] != pub.ID {
				t.Errorf("MarshalJWKS() = %s, want use sig, alg %s, kid %s", data, alg, pub.ID)
			}
		})
	}

	// All three in one set, and from a file.
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, marshal(t, all...), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := token.LoadJWKS(path)
	if err != nil {
		t.Fatalf("LoadJWKS() error = %v", err)
	}
	if got := set.Keys(); len(got) != len(all) {
		t.Errorf("LoadJWKS() has %d keys, want %d", len(got), len(all))
	}
	if _, err := token.LoadJWKS(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadJWKS(missing) error = %v, want fs.ErrNotExist", err)
	}
}

// The kid of every key keys generates is the RFC 7638 thumbprint of its
// public key, which is how a verifier can check a published kid.
func TestThumbprintIsKid(t *testing.T) {
	for _, alg := range algorithms {
		k, err := keys.Generate(alg, 0, t0, t0)
		if err != nil {
			t.Fatal(err)
		}
		if kid, err := keys.Thumbprint(k.Public()); err != nil || kid != k.ID {
			t.Errorf("%s: Thumbprint() = %q, %v, want kid %q", alg, kid, err, k.ID)
		}
	}
}

// jwkOf returns the single JWK of pub as a mutable map.
func jwkOf(t testing.TB, pub token.PublicKey) map[string]any {
	t.Helper()
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(marshal(t, pub), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Keys[0]
}

func setOf(t testing.TB, jwks ...map[string]any) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// jwksRefusal is a JWK Set that ParseJWKS must refuse, saying want.
type jwksRefusal struct {
	name string
	data []byte
	want string // in the error
}

// jwksRefusals is the table of TestParseJWKSRefuses, which also seeds
// FuzzParseJWKS.
func jwksRefusals(t testing.TB) []jwksRefusal {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	ed := jwkOf(t, publicKey(t, keys.EdDSA))
	ec := jwkOf(t, publicKey(t, keys.ES256))
	rs := jwkOf(t, publicKey(t, keys.RS256))

	// A point that is not on P-256: the valid x with y+1.
	y, _ := base64.RawURLEncoding.DecodeString(ec["y"].(string))
	offCurve := new(big.Int).Add(new(big.Int).SetBytes(y), big.NewInt(1)).FillBytes(make([]byte, 32))
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakJWK := with(rs, "n", b64(weak.N.Bytes()))

	return []jwksRefusal{
		{"not JSON", []byte(`{"keys": [`), "invalid JWK set"},
		{"no keys member", []byte(`{}`), `no "keys"`},
		{"private d on OKP", setOf(t, with(ed, "d", ed["x"])), "private"},
		{"private d on EC", setOf(t, with(ec, "d", ec["x"])), "private"},
		{"private p on RSA", setOf(t, with(rs, "p", "AQAB")), "private"},
		{"private q on RSA", setOf(t, with(rs, "q", "AQAB")), "private"},
		{"private dp on RSA", setOf(t, with(rs, "dp", "AQAB")), "private"},
		{"private dq on RSA", setOf(t, with(rs, "dq", "AQAB")), "private"},
		{"private qi on RSA", setOf(t, with(rs, "qi", "AQAB")), "private"},
		{"missing kid", setOf(t, with(ed, "kid", nil)), "no kid"},
		{"empty kid", setOf(t, with(ed, "kid", "")), "no kid"},
		{"duplicate kid", setOf(t, ed, with(jwkOf(t, publicKey(t, keys.EdDSA)), "kid", ed["kid"])), "twice"},
		{"RS256 on OKP", setOf(t, with(ed, "alg", "RS256")), "does not fit"},
		{"EdDSA on EC", setOf(t, with(ec, "alg", "EdDSA")), "does not fit"},
		{"ES256 on RSA", setOf(t, with(rs, "alg", "ES256")), "does not fit"},
		{"alg none", setOf(t, with(ed, "alg", "none")), "does not fit"},
		{"HS256 on RSA", setOf(t, with(rs, "alg", "HS256")), "does not fit"},
		{"HS256 on EC", setOf(t, with(ec, "alg", "HS256")), "does not fit"},
		{"PS256 on RSA", setOf(t, with(rs, "alg", "PS256")), "does not fit"},
		{"EC point not on curve", setOf(t, with(ec, "y", b64(offCurve))), "key " + ec["kid"].(string)},
		{"EC short x", setOf(t, with(ec, "x", b64(make([]byte, 31)))), "bad x or y"},
		{"OKP short x", setOf(t, with(ed, "x", b64(make([]byte, 31)))), "bad x"},
		{"OKP x not base64url", setOf(t, with(ed, "x", "!!!")), "bad x"},
		{"RSA 1024 bits", setOf(t, weakJWK), "weak"},
		{"RSA even exponent", setOf(t, with(rs, "e", b64([]byte{4}))), "weak"},
		{"RSA exponent 1", setOf(t, with(rs, "e", b64([]byte{1}))), "weak"},
		{"RSA no exponent", setOf(t, with(rs, "e", nil)), "bad n or e"},
	}
}

func TestParseJWKSRefuses(t *testing.T) {
	for _, tt := range jwksRefusals(t) {
		t.Run(tt.name, func(t *testing.T) {
			set, err := token.ParseJWKS(tt.data)
			if !errors.Is(err, token.ErrJWKS) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseJWKS() = %v, %v, want ErrJWKS saying %q", set, err, tt.want)
			}
		})
	}
}

func TestParseJWKSSkips(t *testing.T) {
	ed := jwkOf(t, publicKey(t, keys.EdDSA))
	ec := jwkOf(t, publicKey(t, keys.ES256))
	x25519 := map[string]any{"kty": "OKP", "crv": "X25519", "kid": "x", "x": ed["x"]}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, _ := p384.PublicKey.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	data := setOf(t,
		with(ec, "use", "enc"), // an encryption key: not ours to use
		map[string]any{"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"}, // unknown kty
		map[string]any{"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64(point[1:49]), "y": b64(point[49:])},
		x25519,
		with(ed, "alg", nil), // no alg: the one the key type allows
	)
	set, err := token.ParseJWKS(data)
	if err != nil {
		t.Fatalf("ParseJWKS() error = %v", err)
	}
	got := set.Keys()
	if len(got) != 1 || got[0].ID != ed["kid"] || got[0].Algorithm != "EdDSA" {
		t.Fatalf("ParseJWKS() keys = %+v, want only the EdDSA key %s", got, ed["kid"])
	}
	if _, ok := got[0].Key.(ed25519.PublicKey); !ok {
		t.Errorf("key type = %T, want ed25519.PublicKey", got[0].Key)
	}
	// An empty set is valid (and verifies nothing).
	if set, err := token.ParseJWKS([]byte(`{"keys":[]}`)); err != nil || len(set.Keys()) != 0 {
		t.Errorf("ParseJWKS(empty) = %v, %v, want an empty set", set, err)
	}
}

func TestMarshalJWKSRefuses(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]any{
		"P-384":       &p384.PublicKey,
		"private key": edPriv,
		"string":      "secret",
	} {
		if data, err := issue.MarshalJWKS([]token.PublicKey{{ID: "k", Algorithm: "ES256", Key: key}}); err == nil {
			t.Errorf("MarshalJWKS(%s) = %s, want an error", name, data)
		}
	}
}

// edSet is a JWK Set of n Ed25519 keys with made-up key ids.
func edSet(t *testing.T, n int) []byte {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for i := range n {
		x := make([]byte, ed25519.PublicKeySize)
		rand.Read(x)
		set.Keys = append(set.Keys, map[string]string{
			"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
			"kid": "key-" + strconv.Itoa(i), "x": base64.RawURLEncoding.EncodeToString(x),
		})
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A set is bounded: MaxJWKSKeys keys parse, one more is refused with an
// error that says the bound; a duplicate among the most keys is still found.
func TestParseJWKSSize(t *testing.T) {
	data := edSet(t, token.MaxJWKSKeys)
	set, err := token.ParseJWKS(data)
	if err != nil {
		t.Fatalf("ParseJWKS(%d keys) error = %v, want nil", token.MaxJWKSKeys, err)
	}
	if got := len(set.Keys()); got != token.MaxJWKSKeys {
		t.Errorf("ParseJWKS(%d keys) has %d keys", token.MaxJWKSKeys, got)
	}
	last := "key-" + strconv.Itoa(token.MaxJWKSKeys-1)
	if _, _, err := set.VerificationKey(context.Background(), last); err != nil {
		t.Errorf("VerificationKey(%s) error = %v", last, err)
	}

	_, err = token.ParseJWKS(edSet(t, token.MaxJWKSKeys+1))
	if want := strconv.Itoa(token.MaxJWKSKeys); !errors.Is(err, token.ErrJWKS) || err == nil || !strings.Contains(err.Error(), "at most "+want) {
		t.Errorf("ParseJWKS(%d keys) error = %v, want ErrJWKS saying at most %s", token.MaxJWKSKeys+1, err, want)
	}

	dup := strings.Replace(string(data), `"kid":"key-1"`, `"kid":"key-0"`, 1)
	if _, err := token.ParseJWKS([]byte(dup)); err == nil || !strings.Contains(err.Error(), "kid key-0 appears twice") {
		t.Errorf("ParseJWKS(duplicate kid) error = %v, want kid key-0 appears twice", err)
	}
}

// FuzzParseJWKS: whatever the input, ParseJWKS returns a set or an error
// matching ErrJWKS, never panics, and a set it returns holds only keys that
// answer VerificationKey under their own id and algorithm. Seeded from the
// refusal table and from sets it accepts.
func FuzzParseJWKS(f *testing.F) {
	for _, tt := range jwksRefusals(f) {
		f.Add(tt.data)
	}
	f.Add(setOf(f, jwkOf(f, publicKey(f, keys.EdDSA)), jwkOf(f, publicKey(f, keys.ES256)), jwkOf(f, publicKey(f, keys.RS256))))
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := token.ParseJWKS(data)
		if err != nil {
			if set != nil || !errors.Is(err, token.ErrJWKS) {
				t.Fatalf("ParseJWKS() = %v, %v; want nil and an error matching ErrJWKS", set, err)
			}
			return
		}
		for _, k := range set.Keys() {
			alg, key, err := set.VerificationKey(context.Background(), k.ID)
			if err != nil || alg != k.Algorithm || !reflect.DeepEqual(key, k.Key) {
				t.Fatalf("VerificationKey(%q) = %q, %v, %v; want %q and the key", k.ID, alg, key, err, k.Algorithm)
			}
			switch alg {
			case "EdDSA", "ES256", "RS256":
			default:
				t.Fatalf("key %q has algorithm %q", k.ID, alg)
			}
		}
	})
}
