package token_test

// The token attacks of RFC 8725 ("JSON Web Token Best Current Practices")
// and the JWT CVEs of the last decade, as one table: every token below must
// be refused by Verify with ErrInvalid and the reason named in the case, and
// the controls (want nil) are the same constructions done right, so that
// the table cannot pass because every token is broken in some other way.
//
// Tokens are built by hand (raw base64url segments, signatures from
// crypto/ed25519, crypto/ecdsa and crypto/rsa directly) so that the table
// can say what golang-jwt would refuse to produce. Identifiers here carry an
// "atk" prefix: other test files share the package.
//
// Decisions the table pins, beyond what RFC 8725 requires:
//   - An "alg" outside the algorithms sessiond's keys use ("none" in any
//     spelling, HS256, PS256, an unknown name, or no "alg" at all) is
//     ErrSignature: no signature under it can be accepted. ErrAlgorithm is
//     for an algorithm sessiond uses that is not the one of the key the
//     "kid" names (ES256 on an Ed25519 key).
//   - "exp", "iat" and "nbf" are JSON integers of whole seconds from 0 to
//     253402300799 (the end of year 9999), as the Issuer writes them; a
//     string, fraction, exponent, negative or out-of-range value is
//     ErrMalformed, even under sessiond's own signature.
//   - "jti" is a UUID in its 36-character form. Upper-case hex is accepted:
//     it names the same 128-bit id, so revocation (keyed by the id, not the
//     text) still catches it, as the case "closed, jti in upper case"
//     shows. Braces, "urn:uuid:" and the 32-digit form are ErrMalformed.
//   - "jku", "x5u" and "jwk" are ignored, never fetched or trusted: a token
//     our key signed verifies with them, one signed by the key they point
//     at does not, and the URL they name gets no request.
//   - Header and claims are read by a strict decoder (token/decode.go): a
//     duplicate member is ErrMalformed, in the header (read before the
//     signature is checked) and in the claims (after), even under our own
//     signature; RFC 7515 §4 and RFC 7519 §4 allow refusing or keeping the
//     last one, and refusing leaves no two readings of one token. So is a
//     claims member named like a registered claim but for case ("ISS"),
//     which encoding/json took for that claim, more than 32 members in
//     one object, or values nested more than 16 deep.
//   - Escapes are decoded, in every member alike (\u0073essiond is
//     "sessiond"); whitespace between JSON tokens is allowed, anything
//     after the object is ErrMalformed.
//   - ECDSA signatures are malleable: (r, n-s) verifies as well as (r, s).
//     It names the same jti, so a closed session stays closed under it
//     ("closed ES256 token replayed with (r, n-s)").

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// atkNow is the fixed time of every verifier in the table.
var atkNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func atkClock() time.Time { return atkNow }

var atkB64 = base64.RawURLEncoding

func atkSeg(s string) string { return atkB64.EncodeToString([]byte(s)) }

// atkKeys are the key material of the table: a keyring holding an active
// Ed25519 key and retired ES256 and RS256 keys that still verify, a key
// the attacker owns, and a keyring that is about to lose a key. The keys
// are the same in every process (derived from names; the RSA key is in
// testdata), so that what the fuzzer's workers receive from its
// coordinator is signed by keys they know.
type atkKeys struct {
	ring       *keys.Keyring
	ed         ed25519.PrivateKey
	es         *ecdsa.PrivateKey
	rs         *rsa.PrivateKey
	edKID      string
	esKID      string
	rsKID      string
	jwks       *token.JWKS // the public halves of ed, es and rs
	evil       ed25519.PrivateKey
	evilKID    string
	removedKID string
	removed    ed25519.PrivateKey
	// removedRing has the key removedKID until removeKey takes it out of
	// the key file at removedPath; removedJWKS keeps it.
	removedRing *keys.Keyring
	removedPath string
	removedJWKS *token.JWKS
}

func atkSeed(name string) []byte {
	seed := sha256.Sum256([]byte("sessiond attack test key " + name))
	return seed[:]
}

func atkEd25519(name string) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(atkSeed(name)) }

func atkP256(tb testing.TB, name string) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), atkSeed(name))
	if err != nil {
		tb.Fatalf("ParseRawPrivateKey() error = %v", err)
	}
	return k
}

func atkRSA(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "attack_rsa2048.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		tb.Fatal("testdata/attack_rsa2048.pem: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatalf("testdata/attack_rsa2048.pem: %v", err)
	}
	return k.(*rsa.PrivateKey)
}

func atkKID(tb testing.TB, pub crypto.PublicKey) string {
	tb.Helper()
	kid, err := keys.Thumbprint(pub)
	if err != nil {
		tb.Fatalf("Thumbprint() error = %v", err)
	}
	return kid
}

// atkKey is one key of a key file.
type atkKey struct {
	alg       keys.Algorithm
	key       crypto.Signer
	activates time.Time
}

// atkKeyring writes ks in the key file format of package keys (keys.Generate
// draws fresh keys, and a file is the only other way into a keyring) and
// opens a keyring on it.
func atkKeyring(tb testing.TB, ks ...atkKey) (*keys.Keyring, string) {
	tb.Helper()
	type fileKey struct {
		ID         string         `json:"kid"`
		Algorithm  keys.Algorithm `json:"alg"`
		Created    time.Time      `json:"created"`
		Activates  time.Time      `json:"activates"`
		PrivateKey []byte         `json:"private_key_pkcs8"`
	}
	file := struct {
		Version int       `json:"version"`
		Keys    []fileKey `json:"keys"`
	}{Version: 1}
	for _, k := range ks {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			tb.Fatal(err)
		}
		file.Keys = append(file.Keys, fileKey{atkKID(tb, k.key.Public()), k.alg, k.activates, k.activates, der})
	}
	data, err := json.Marshal(file)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "keys.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	ring, err := keys.OpenKeyring(path, keys.Policy{MaxTokenLifetime: 24 * time.Hour}, keys.KeyringOptions{Now: atkClock})
	if err != nil {
		tb.Fatalf("OpenKeyring() error = %v", err)
	}
	if got := ring.Set().Len(); got != len(ks) {
		tb.Fatalf("keyring has %d keys, want %d", got, len(ks))
	}
	return ring, path
}

func atkJWKS(tb testing.TB, ks ...atkKey) *token.JWKS {
	tb.Helper()
	var pubs []token.PublicKey
	for _, k := range ks {
		pubs = append(pubs, token.PublicKey{ID: atkKID(tb, k.key.Public()), Algorithm: string(k.alg), Key: k.key.Public()})
	}
	data, err := issue.MarshalJWKS(pubs)
	if err != nil {
		tb.Fatalf("MarshalJWKS() error = %v", err)
	}
	set, err := token.ParseJWKS(data)
	if err != nil {
		tb.Fatalf("ParseJWKS() error = %v", err)
	}
	return set
}

func newAtkKeys(tb testing.TB) *atkKeys {
	tb.Helper()
	// Activation order: rs, es, ed. The latest (ed) signs; the others are
	// retired and verify until ed's activation + MaxTokenLifetime.
	rs := atkKey{keys.RS256, atkRSA(tb), atkNow.Add(-3 * time.Hour)}
	es := atkKey{keys.ES256, atkP256(tb, "es"), atkNow.Add(-2 * time.Hour)}
	ed := atkKey{keys.EdDSA, atkEd25519("ed"), atkNow.Add(-time.Hour)}
	k := &atkKeys{
		ed: ed.key.(ed25519.PrivateKey), edKID: atkKID(tb, ed.key.Public()),
		es: es.key.(*ecdsa.PrivateKey), esKID: atkKID(tb, es.key.Public()),
		rs: rs.key.(*rsa.PrivateKey), rsKID: atkKID(tb, rs.key.Public()),
		evil: atkEd25519("evil"),
		jwks: atkJWKS(tb, ed, es, rs),
	}
	k.evilKID = atkKID(tb, k.evil.Public())
	k.ring, _ = atkKeyring(tb, rs, es, ed)
	if kid, _, _, err := k.ring.SigningKey(); err != nil || kid != k.edKID {
		tb.Fatalf("SigningKey() = %s, %v, want %s", kid, err, k.edKID)
	}

	old := atkKey{keys.EdDSA, atkEd25519("removed"), atkNow.Add(-2 * time.Hour)}
	cur := atkKey{keys.EdDSA, atkEd25519("current"), atkNow.Add(-time.Hour)}
	k.removed, k.removedKID = old.key.(ed25519.PrivateKey), atkKID(tb, old.key.Public())
	k.removedJWKS = atkJWKS(tb, old, cur)
	k.removedRing, k.removedPath = atkKeyring(tb, old, cur)
	return k
}

// removeKey takes the key removedKID out of the key file, as `sessiond
// keys remove` does, and has removedRing reload it.
func (k *atkKeys) removeKey(tb testing.TB) {
	tb.Helper()
	if _, err := keys.Update(k.removedPath, func(s *keys.Set) error {
		return s.Remove(k.removedKID, atkNow)
	}); err != nil {
		tb.Fatalf("Update(remove) error = %v", err)
	}
	if err := k.removedRing.Reload(); err != nil {
		tb.Fatalf("Reload() error = %v", err)
	}
}

// atkSign returns header.claims.signature, signing with method under key.
// method is what the signature is computed with, whatever header says.
func atkSign(tb testing.TB, method string, key any, header, claims string) string {
	tb.Helper()
	input := atkSeg(header) + "." + atkSeg(claims)
	return input + "." + atkB64.EncodeToString(atkSignature(tb, method, key, input))
}

func atkSignature(tb testing.TB, method string, key any, input string) []byte {
	tb.Helper()
	digest := func(h hash.Hash) []byte { h.Write([]byte(input)); return h.Sum(nil) }
	mac := func(h func() hash.Hash) []byte {
		m := hmac.New(h, key.([]byte))
		m.Write([]byte(input))
		return m.Sum(nil)
	}
	var sig []byte
	var err error
	switch method {
	case "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(input))
	case "ES256":
		// RFC 6979: deterministic, like every signature here but PS256's.
		var der []byte
		der, err = key.(*ecdsa.PrivateKey).Sign(nil, digest(sha256.New()), crypto.SHA256)
		if err == nil {
			sig, err = atkDERToP1363(der)
		}
	case "RS256":
		sig, err = rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, digest(sha256.New()))
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest(sha256.New()),
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "HS256":
		sig = mac(sha256.New)
	case "HS384":
		sig = mac(sha512.New384)
	case "HS512":
		sig = mac(sha512.New)
	case "none":
	default:
		tb.Fatalf("atkSign: unknown method %q", method)
	}
	if err != nil {
		tb.Fatalf("atkSign(%s) error = %v", method, err)
	}
	return sig
}

// atkDERToP1363 turns an ASN.1 ECDSA signature into r || s.
func atkDERToP1363(der []byte) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return nil, err
	}
	return atkP1363(rs.R, rs.S), nil
}

// atkP1363 is the JWS form of an ES256 signature: r || s, 32 bytes each.
func atkP1363(r, s *big.Int) []byte {
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

// atkHeader is the header of a session token signed under kid with alg.
func atkHeader(alg, kid string) string {
	return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"session+jwt"}`, alg, kid)
}

// atkClaimsWith are valid claims at atkNow with jti; extra members,
// written as JSON, are appended.
func atkClaimsWith(jti string, extra ...string) string {
	c := fmt.Sprintf(`{"iss":"sessiond","exp":%d,"iat":%d,"jti":%q`,
		atkNow.Add(time.Hour).Unix(), atkNow.Unix(), jti)
	for _, e := range extra {
		c += "," + e
	}
	return c + "}"
}

// atkClaimsRaw writes claims from name/JSON-value pairs, in order.
func atkClaimsRaw(members ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(members); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", members[i], members[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// atkStd are the standard members for atkClaimsRaw, minus those named in
// drop, whose values can then be given again.
func atkStd(jti string, drop ...string) []string {
	all := []string{
		"iss", `"sessiond"`,
		"exp", fmt.Sprint(atkNow.Add(time.Hour).Unix()),
		"iat", fmt.Sprint(atkNow.Unix()),
		"jti", `"` + jti + `"`,
	}
	var out []string
	for i := 0; i < len(all); i += 2 {
		keep := true
		for _, d := range drop {
			keep = keep && all[i] != d
		}
		if keep {
			out = append(out, all[i], all[i+1])
		}
	}
	return out
}

func atkParts(tok string) (header, claims, sig string) {
	p := strings.SplitN(tok, ".", 3)
	return p[0], p[1], p[2]
}

// atkReplaceClaims keeps tok's header and signature but replaces its claims
// with what edit makes of them: a payload changed after signing.
func atkReplaceClaims(tb testing.TB, tok string, edit func(map[string]any)) string {
	tb.Helper()
	h, c, s := atkParts(tok)
	raw, err := atkB64.DecodeString(c)
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	edit(m)
	out, _ := json.Marshal(m)
	return h + "." + atkSeg(string(out)) + "." + s
}

func atkReplaceSig(tok string, sig []byte) string {
	h, c, _ := atkParts(tok)
	return h + "." + c + "." + atkB64.EncodeToString(sig)
}

func atkSigBytes(tb testing.TB, tok string) []byte {
	tb.Helper()
	_, _, s := atkParts(tok)
	sig, err := atkB64.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// atkRevoked is a RevocationChecker over a set of ids.
type atkRevoked map[uuid.UUID]bool

func (r atkRevoked) IsRevoked(_ context.Context, id uuid.UUID) (bool, error) { return r[id], nil }

// atkCase is one token and what Verify must say of it.
type atkCase struct {
	name string
	v    *token.Verifier
	tok  string
	want error // nil: the token must verify
}

// atkSuite is the table and what it was built with.
type atkSuite struct {
	keys   *atkKeys
	cases  []atkCase
	issued []string // tokens the Issuer made, valid at atkNow
}

// newAtkSuite builds the table. evilJWKS is the URL that jku and x5u
// headers name. Apart from the Issuer's tokens (ids from crypto/rand) and
// PS256 signatures (salted), every token is the same in every process.
func newAtkSuite(tb testing.TB, evilJWKS string) *atkSuite {
	tb.Helper()
	k := newAtkKeys(tb)
	rng := mrand.NewChaCha8([32]byte([]byte("sessiond attack table jti source")))
	newID := func() uuid.UUID {
		id, err := uuid.NewRandomFromReader(rng)
		if err != nil {
			tb.Fatal(err)
		}
		return id
	}
	claimsOf := func(extra ...string) string { return atkClaimsWith(newID().String(), extra...) }
	withStd := func(drop []string, extra ...string) string {
		return atkClaimsRaw(append(atkStd(newID().String(), drop...), extra...)...)
	}
	evilJWK := fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"kid":%q}`,
		atkB64.EncodeToString(k.evil.Public().(ed25519.PublicKey)), k.evilKID)

	opt := token.WithClock(atkClock)
	ring := token.NewVerifier(k.ring, opt)
	jwks := token.NewVerifier(k.jwks, opt)
	emptyIss := token.NewVerifier(k.ring, opt, token.WithIssuer(""))
	revoked := atkRevoked{}
	rev := token.NewVerifier(k.ring, opt, token.WithRevocation(revoked))
	removedRing := token.NewVerifier(k.removedRing, opt)
	removedJWKS := token.NewVerifier(k.removedJWKS, opt)

	issuer := issue.New(k.ring, issue.WithClock(atkClock))
	issued, _, err := issuer.Issue(time.Hour)
	if err != nil {
		tb.Fatalf("Issue() error = %v", err)
	}
	closed, closedClaims, err := issuer.Issue(time.Hour)
	if err != nil {
		tb.Fatalf("Issue() error = %v", err)
	}
	revoked[closedClaims.ID] = true

	ed := func(header, claims string) string { return atkSign(tb, "EdDSA", k.ed, header, claims) }
	edH := atkHeader("EdDSA", k.edKID)
	good := ed(edH, claimsOf()) // hand-built, like issued

	// A token whose signature has both '-' and '_' in base64url, so that
	// re-encoding it in the standard alphabet changes it.
	var mixed string
	for range 1000 {
		mixed = ed(edH, claimsOf())
		if _, _, s := atkParts(mixed); strings.Contains(s, "-") && strings.Contains(s, "_") {
			break
		}
	}
	mixedSig := atkSigBytes(tb, mixed)
	_, _, mixedS := atkParts(mixed)
	if !strings.Contains(mixedS, "-") || !strings.Contains(mixedS, "_") {
		tb.Fatal("no signature with '-' and '_' in 1000 tries")
	}
	// The last character of a 64-byte signature carries 2 bits and 4 bits
	// that must be zero; setting one gives a different string that a
	// lenient decoder reads as the same signature.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, mixedS[len(mixedS)-1])
	trailing := mixed[:len(mixed)-1] + string(alphabet[last|1])
	if lenient, _ := base64.RawURLEncoding.DecodeString(mixedS[:len(mixedS)-1] + string(alphabet[last|1])); string(lenient) != string(mixedSig) {
		tb.Fatal("non-canonical trailing bits changed the decoded signature; the case would test nothing")
	}

	// ES256 signatures under the retired ES256 key.
	esH := atkHeader("ES256", k.esKID)
	esTok := atkSign(tb, "ES256", k.es, esH, claimsOf())
	esSig := atkSigBytes(tb, esTok)
	n := elliptic.P256().Params().N
	r, s := new(big.Int).SetBytes(esSig[:32]), new(big.Int).SetBytes(esSig[32:])
	highS := atkReplaceSig(esTok, atkP1363(r, new(big.Int).Sub(n, s)))
	esClosedJTI := newID()
	esClosed := atkSign(tb, "ES256", k.es, esH, atkClaimsWith(esClosedJTI.String()))
	esClosedSig := atkSigBytes(tb, esClosed)
	esClosedMalleated := atkReplaceSig(esClosed, atkP1363(new(big.Int).SetBytes(esClosedSig[:32]),
		new(big.Int).Sub(n, new(big.Int).SetBytes(esClosedSig[32:]))))
	revoked[esClosedJTI] = true
	esRev := token.NewVerifier(k.jwks, opt, token.WithRevocation(revoked))
	derSig, err := k.es.Sign(nil, func() []byte {
		h, c, _ := atkParts(esTok)
		d := sha256.Sum256([]byte(h + "." + c))
		return d[:]
	}(), crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}

	edPub := []byte(k.ed.Public().(ed25519.PublicKey))
	rsDER, _ := x509.MarshalPKIXPublicKey(&k.rs.PublicKey)
	rsPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsDER})
	esPoint, _ := k.es.PublicKey.Bytes()

	// Tokens our key signed of exactly MaxSize and MaxSize+1 bytes, padded
	// in an extra claim and, where base64url cannot reach a length that
	// way, with spaces in the header.
	sized := func(size int) string {
		for spaces := range 4 {
			h := strings.Replace(edH, ",", ","+strings.Repeat(" ", spaces), 1)
			base := len(ed(h, atkClaimsWith(newID().String(), `"pad":""`)))
			start := max(0, (size-base)*3/4-4)
			for pad := start; pad < start+8; pad++ {
				tok := ed(h, atkClaimsWith(newID().String(), fmt.Sprintf(`"pad":%q`, strings.Repeat("x", pad))))
				if len(tok) == size {
					return tok
				}
			}
		}
		tb.Fatalf("cannot build a token of %d bytes", size)
		return ""
	}
	atMax, overMax := sized(token.MaxSize), sized(token.MaxSize+1)

	// A token that verified (and so sits in the verifier's cache) before
	// its key was removed, and one first seen after.
	removedTok := atkSign(tb, "EdDSA", k.removed, atkHeader("EdDSA", k.removedKID), claimsOf())
	removedFresh := atkSign(tb, "EdDSA", k.removed, atkHeader("EdDSA", k.removedKID), claimsOf())
	if _, err := removedRing.Verify(context.Background(), removedTok); err != nil {
		tb.Fatalf("before removal Verify() error = %v", err)
	}
	k.removeKey(tb)
	upperJTI := newID()
	revoked[upperJTI] = true
	upper := ed(edH, atkClaimsWith(strings.ToUpper(upperJTI.String())))

	exp := atkNow.Add(time.Hour).Unix()
	iat := atkNow.Unix()

	cases := []atkCase{
		// Controls: the constructions below, done right.
		{"control: issued by Issuer", ring, issued, nil},
		{"control: hand-built EdDSA", ring, good, nil},
		{"control: hand-built EdDSA, signature with - and _", ring, mixed, nil},
		{"control: ES256 under the keyring", ring, esTok, nil},
		{"control: ES256 under ParseJWKS", jwks, esTok, nil},
		{"control: RS256 under the keyring", ring, atkSign(tb, "RS256", k.rs, atkHeader("RS256", k.rsKID), claimsOf()), nil},
		{"control: RS256 under ParseJWKS", jwks, atkSign(tb, "RS256", k.rs, atkHeader("RS256", k.rsKID), claimsOf()), nil},
		{"control: ECDSA (r, n-s) verifies too", jwks, highS, nil},
		{"control: nbf in the past", ring, ed(edH, claimsOf(fmt.Sprintf(`"nbf":%d`, iat-60))), nil},
		{"control: jti in upper case", ring, ed(edH, atkClaimsWith(strings.ToUpper(newID().String()))), nil},
		{"control: not revoked", rev, issued, nil},
		{"control: removed key's token under a set that has it", removedJWKS, removedTok, nil},
		{"control: exactly MaxSize bytes", ring, atMax, nil},
		{"control: jku, x5u and jwk are ignored, our key signed", ring,
			ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","jku":%q,"x5u":%q,"jwk":%s}`, k.edKID, evilJWKS, evilJWKS, evilJWK), claimsOf()), nil},
		{"control: WithIssuer(\"\") accepts the default issuer", emptyIss, issued, nil},

		// alg: none, in every spelling, with and without a signature.
		{"alg none, no signature", ring, atkSign(tb, "none", nil, atkHeader("none", k.edKID), claimsOf()), token.ErrSignature},
		{"alg None", ring, atkSign(tb, "none", nil, atkHeader("None", k.edKID), claimsOf()), token.ErrSignature},
		{"alg NONE", ring, atkSign(tb, "none", nil, atkHeader("NONE", k.edKID), claimsOf()), token.ErrSignature},
		{"alg nOnE", ring, atkSign(tb, "none", nil, atkHeader("nOnE", k.edKID), claimsOf()), token.ErrSignature},
		{"alg none, no kid", ring, atkSign(tb, "none", nil, `{"alg":"none","typ":"session+jwt"}`, claimsOf()), token.ErrSignature},
		{"alg none, no typ", ring, atkSign(tb, "none", nil, `{"alg":"none"}`, claimsOf()), token.ErrSignature},
		{"alg none, our valid signature kept", ring, func() string {
			_, c, s := atkParts(good)
			return atkSeg(atkHeader("none", k.edKID)) + "." + c + "." + s
		}(), token.ErrSignature},
		{"alg eddsa (case matters), our signature", ring, ed(atkHeader("eddsa", k.edKID), claimsOf()), token.ErrSignature},
		{"alg empty", ring, ed(atkHeader("", k.edKID), claimsOf()), token.ErrSignature},
		{"alg missing", ring, ed(fmt.Sprintf(`{"kid":%q,"typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrSignature},
		{"alg a number", ring, ed(fmt.Sprintf(`{"alg":1,"kid":%q,"typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrSignature},

		// Key confusion: HMAC keyed with public key bytes (CVE-2015-9235).
		{"HS256 keyed with the Ed25519 public key", ring, atkSign(tb, "HS256", edPub, atkHeader("HS256", k.edKID), claimsOf()), token.ErrSignature},
		{"HS384 keyed with the Ed25519 public key", ring, atkSign(tb, "HS384", edPub, atkHeader("HS384", k.edKID), claimsOf()), token.ErrSignature},
		{"HS512 keyed with the Ed25519 public key", ring, atkSign(tb, "HS512", edPub, atkHeader("HS512", k.edKID), claimsOf()), token.ErrSignature},
		{"HS256 keyed with the RSA public key PEM", ring, atkSign(tb, "HS256", rsPEM, atkHeader("HS256", k.rsKID), claimsOf()), token.ErrSignature},
		{"HS256 keyed with the P-256 public point", ring, atkSign(tb, "HS256", esPoint, atkHeader("HS256", k.esKID), claimsOf()), token.ErrSignature},

		// An alg that is not the one of the key the kid names.
		{"EdDSA header on the ES256 key", ring, atkSign(tb, "EdDSA", k.evil, atkHeader("EdDSA", k.esKID), claimsOf()), token.ErrAlgorithm},
		{"ES256 header on the Ed25519 key, our ES256 key signed", ring, atkSign(tb, "ES256", k.es, atkHeader("ES256", k.edKID), claimsOf()), token.ErrAlgorithm},
		{"RS256 header on the ES256 key, our RS256 key signed", ring, atkSign(tb, "RS256", k.rs, atkHeader("RS256", k.esKID), claimsOf()), token.ErrAlgorithm},
		{"RS256 header on the Ed25519 key under ParseJWKS", jwks, atkSign(tb, "RS256", k.rs, atkHeader("RS256", k.edKID), claimsOf()), token.ErrAlgorithm},
		{"PS256 on the RS256 key, our RS256 key signed", ring, atkSign(tb, "PS256", k.rs, atkHeader("PS256", k.rsKID), claimsOf()), token.ErrSignature},
		{"ES384 on the ES256 key", ring, atkSign(tb, "ES256", k.es, atkHeader("ES384", k.esKID), claimsOf()), token.ErrSignature},
		{"kid swapped to our ES256 key after signing", ring, func() string {
			_, c, s := atkParts(good)
			return atkSeg(atkHeader("EdDSA", k.esKID)) + "." + c + "." + s
		}(), token.ErrAlgorithm},

		// kid: only a string naming a key we hold, as is.
		{"kid unknown", ring, ed(atkHeader("EdDSA", k.evilKID), claimsOf()), token.ErrUnknownKey},
		{"kid empty", ring, ed(atkHeader("EdDSA", ""), claimsOf()), token.ErrUnknownKey},
		{"kid missing", ring, ed(`{"alg":"EdDSA","typ":"session+jwt"}`, claimsOf()), token.ErrUnknownKey},
		{"kid 2 KB", ring, ed(atkHeader("EdDSA", strings.Repeat("A", 2048)), claimsOf()), token.ErrUnknownKey},
		{"kid 10 KB", ring, ed(atkHeader("EdDSA", strings.Repeat("A", 10240)), claimsOf()), token.ErrTooLarge},
		{"kid path-like", ring, ed(atkHeader("EdDSA", "../../keys.json"), claimsOf()), token.ErrUnknownKey},
		{"kid absolute path", ring, ed(atkHeader("EdDSA", "/etc/passwd"), claimsOf()), token.ErrUnknownKey},
		{"kid our kid in upper case", ring, ed(atkHeader("EdDSA", strings.ToUpper(k.edKID)), claimsOf()), token.ErrUnknownKey},
		{"kid our kid with a NUL", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":"%s\u0000","typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrUnknownKey},
		{"kid a number", ring, ed(`{"alg":"EdDSA","kid":12345,"typ":"session+jwt"}`, claimsOf()), token.ErrUnknownKey},
		{"kid an object", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":{"kid":%q},"typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrUnknownKey},
		{"kid a list", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":[%q],"typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrUnknownKey},
		{"kid null", ring, ed(`{"alg":"EdDSA","kid":null,"typ":"session+jwt"}`, claimsOf()), token.ErrUnknownKey},

		// jku, x5u, jwk: an attacker's key advertised in the header.
		{"jwk embeds the attacker key that signed, its kid", ring, atkSign(tb, "EdDSA", k.evil,
			fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","jwk":%s}`, k.evilKID, evilJWK), claimsOf()), token.ErrUnknownKey},
		{"jwk embeds the attacker key that signed, our kid", ring, atkSign(tb, "EdDSA", k.evil,
			fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","jwk":%s}`, k.edKID, evilJWK), claimsOf()), token.ErrSignature},
		{"jwk embeds the attacker key that signed, no kid", ring, atkSign(tb, "EdDSA", k.evil,
			fmt.Sprintf(`{"alg":"EdDSA","typ":"session+jwt","jwk":%s}`, evilJWK), claimsOf()), token.ErrUnknownKey},
		{"jku names the attacker's set, its kid", ring, atkSign(tb, "EdDSA", k.evil,
			fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","jku":%q}`, k.evilKID, evilJWKS), claimsOf()), token.ErrUnknownKey},
		{"jku names the attacker's set, our kid", ring, atkSign(tb, "EdDSA", k.evil,
			fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","jku":%q}`, k.edKID, evilJWKS), claimsOf()), token.ErrSignature},
		{"x5u names the attacker's URL, its kid", ring, atkSign(tb, "EdDSA", k.evil,
			fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","x5u":%q}`, k.evilKID, evilJWKS), claimsOf()), token.ErrUnknownKey},
		{"x5u names the attacker's URL, our kid", ring, atkSign(tb, "EdDSA", k.evil,
			fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","x5u":%q}`, k.edKID, evilJWKS), claimsOf()), token.ErrSignature},

		// crit: sessiond understands no extension, so any crit fails, even
		// under our own signature.
		{"crit exp, our key signed", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","crit":["exp"],"exp":1}`, k.edKID), claimsOf()), token.ErrMalformed},
		{"crit b64 false, our key signed", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","b64":false,"crit":["b64"]}`, k.edKID), claimsOf()), token.ErrMalformed},
		{"crit empty, our key signed", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","crit":[]}`, k.edKID), claimsOf()), token.ErrMalformed},

		// The signature segment.
		{"signature stripped", ring, func() string { h, c, _ := atkParts(good); return h + "." + c + "." }(), token.ErrSignature},
		{"signature and its dot stripped", ring, func() string { h, c, _ := atkParts(good); return h + "." + c }(), token.ErrMalformed},
		{"signature one byte short", ring, atkReplaceSig(good, atkSigBytes(tb, good)[:63]), token.ErrSignature},
		{"signature cut to an impossible base64 length", ring, good[:len(good)-1], token.ErrMalformed},
		{"signature one byte long", ring, atkReplaceSig(good, append(atkSigBytes(tb, good), 0)), token.ErrSignature},
		{"signature with base64 text appended", ring, good + "AA", token.ErrSignature},
		{"signature with a fourth segment appended", ring, good + ".AAAA", token.ErrMalformed},
		{"signature with padding", ring, mixed + "==", token.ErrMalformed},
		{"signature in standard base64 with padding", ring, func() string {
			h, c, _ := atkParts(mixed)
			return h + "." + c + "." + base64.StdEncoding.EncodeToString(mixedSig)
		}(), token.ErrMalformed},
		{"signature in standard base64, + and /", ring, func() string {
			h, c, _ := atkParts(mixed)
			return h + "." + c + "." + base64.RawStdEncoding.EncodeToString(mixedSig)
		}(), token.ErrMalformed},
		{"signature with non-canonical trailing bits", ring, trailing, token.ErrMalformed},
		{"header with padding", ring, func() string {
			h, c, s := atkParts(good)
			return h + strings.Repeat("=", (4-len(h)%4)%4+4) + "." + c + "." + s
		}(), token.ErrMalformed},
		{"signature from another token", ring, atkReplaceSig(good, atkSigBytes(tb, issued)), token.ErrSignature},
		{"Ed25519 signature all zero", ring, atkReplaceSig(good, make([]byte, 64)), token.ErrSignature},

		// ECDSA: the psychic signature (CVE-2022-21449) and r, s out of range.
		{"ES256 signature all zero (r = s = 0)", ring, atkReplaceSig(esTok, make([]byte, 64)), token.ErrSignature},
		{"ES256 r = s = n", ring, atkReplaceSig(esTok, atkP1363(n, n)), token.ErrSignature},
		{"ES256 r = n", ring, atkReplaceSig(esTok, atkP1363(n, s)), token.ErrSignature},
		{"ES256 s = n", ring, atkReplaceSig(esTok, atkP1363(r, n)), token.ErrSignature},
		{"ES256 r = 0", ring, atkReplaceSig(esTok, atkP1363(big.NewInt(0), s)), token.ErrSignature},
		{"ES256 s = 0", ring, atkReplaceSig(esTok, atkP1363(r, big.NewInt(0))), token.ErrSignature},
		{"ES256 r + n", ring, atkReplaceSig(esTok, append(new(big.Int).Add(r, n).Bytes(), s.FillBytes(make([]byte, 32))...)), token.ErrSignature},
		{"ES256 signature in ASN.1 DER", ring, atkReplaceSig(esTok, derSig), token.ErrSignature},
		{"closed ES256 token replayed with (r, n-s)", esRev, esClosedMalleated, token.ErrRevoked},

		// The payload changed after signing.
		{"exp extended", ring, atkReplaceClaims(tb, good, func(m map[string]any) { m["exp"] = exp + 365*24*3600 }), token.ErrSignature},
		{"jti changed", ring, atkReplaceClaims(tb, good, func(m map[string]any) { m["jti"] = newID().String() }), token.ErrSignature},
		{"iss changed", ring, atkReplaceClaims(tb, good, func(m map[string]any) { m["iss"] = "sessiond2" }), token.ErrSignature},
		{"closed token's jti swapped in", ring, atkReplaceClaims(tb, closed, func(m map[string]any) { m["jti"] = newID().String() }), token.ErrSignature},
		{"duplicate alg added to the header", ring, func() string {
			_, c, s := atkParts(good)
			return atkSeg(fmt.Sprintf(`{"alg":"none","alg":"EdDSA","kid":%q,"typ":"session+jwt"}`, k.edKID)) + "." + c + "." + s
		}(), token.ErrMalformed},
		{"duplicate alg, none last, unsigned", ring, atkSign(tb, "none", nil,
			fmt.Sprintf(`{"alg":"EdDSA","alg":"none","kid":%q,"typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrMalformed},
		{"duplicate exp added to the claims", ring, func() string {
			h, c, s := atkParts(good)
			raw, _ := atkB64.DecodeString(c)
			return h + "." + atkSeg(strings.TrimSuffix(string(raw), "}")+fmt.Sprintf(`,"exp":%d}`, exp+365*24*3600)) + "." + s
		}(), token.ErrSignature},
		{"duplicate exp, signed by the attacker", ring, atkSign(tb, "EdDSA", k.evil, atkHeader("EdDSA", k.edKID),
			withStd(nil, "exp", fmt.Sprint(exp+365*24*3600))), token.ErrSignature},

		// The strict decoder, under our own signature: one reading of
		// every token (see the decisions above).
		{"duplicate kid, our key signed", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"kid":%q,"typ":"session+jwt"}`, k.edKID, k.edKID), claimsOf()), token.ErrMalformed},
		{"duplicate typ, our key signed", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"JWT","typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrMalformed},
		{"duplicate unknown header member, our key signed", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","x":1,"x":2}`, k.edKID), claimsOf()), token.ErrMalformed},
		{"duplicate exp, our key signed", ring, ed(edH, withStd(nil, "exp", fmt.Sprint(exp+60))), token.ErrMalformed},
		{"duplicate jti, our key signed", ring, ed(edH, withStd(nil, "jti", `"`+newID().String()+`"`)), token.ErrMalformed},
		{"duplicate iss, the same value, our key signed", ring, ed(edH, withStd(nil, "iss", `"sessiond"`)), token.ErrMalformed},
		{"duplicate sub, our key signed", ring, ed(edH, withStd(nil, "sub", `"alice"`, "sub", `"bob"`)), token.ErrMalformed},
		{"duplicate unknown claim, our key signed", ring, ed(edH, claimsOf(`"pad":1`, `"pad":1`)), token.ErrMalformed},
		{"duplicate exp, second spelled with an escape, our key signed", ring, ed(edH, claimsOf(fmt.Sprintf(`"\u0065xp":%d`, exp+60))), token.ErrMalformed},
		{"ISS beside iss, our key signed", ring, ed(edH, withStd(nil, "ISS", `"sessiond"`)), token.ErrMalformed},
		{"Exp instead of exp, our key signed", ring, ed(edH, withStd([]string{"exp"}, "Exp", fmt.Sprint(exp))), token.ErrMalformed},
		{"\u017fub (long s) beside sub, our key signed", ring, ed(edH, withStd(nil, "sub", `"alice"`, "\u017fub", `"bob"`)), token.ErrMalformed},
		{"control: escapes decoded in iss, jti, sub and kid", ring,
			ed(fmt.Sprintf(`{"alg":"\u0045dDSA","kid":"\u%04x%s","typ":"session\u002bjwt"}`, k.edKID[0], k.edKID[1:]),
				atkClaimsRaw(append(atkStd(newID().String(), "iss"), "iss", `"\u0073essiond"`, "sub", `"a\"b\\c\u00e9\ud83d\ude00"`)...)), nil},
		{"control: whitespace around every JSON token", ring,
			ed(fmt.Sprintf(" {\t\"alg\" : \"EdDSA\" ,\r\n\"kid\":%q , \"typ\":\"session+jwt\"\n} ", k.edKID),
				fmt.Sprintf(" { \"iss\" : \"sessiond\" , \"exp\" : %d ,\"iat\":%d,\n\"jti\" : %q } \n", exp, iat, newID().String())), nil},
		{"control: unknown members of every JSON type", ring,
			ed(edH, claimsOf(`"a":[1,-2.5e3,{"b":[true,false,null,"x\u0000"]},[]]`, `"c":{}`, `"aud":["x","y"]`)), nil},
		{"header with data after the object, our key signed", ring, ed(edH+"x", claimsOf()), token.ErrMalformed},
		{"header with a second object, our key signed", ring, ed(edH+"{}", claimsOf()), token.ErrMalformed},
		{"claims with data after the object, our key signed", ring, ed(edH, claimsOf()+"]"), token.ErrMalformed},
		{"claims with a NUL after the object, our key signed", ring, ed(edH, claimsOf()+"\x00"), token.ErrMalformed},
		{"claims with a byte order mark, our key signed", ring, ed(edH, "\ufeff"+claimsOf()), token.ErrMalformed},
		{"claims with a trailing comma, our key signed", ring, ed(edH, strings.TrimSuffix(claimsOf(), "}")+",}"), token.ErrMalformed},
		{"claims with a raw control character in a string, our key signed", ring, ed(edH, claimsOf(`"pad":"a`+"\n"+`b"`)), token.ErrMalformed},
		{"claims with an invalid escape, our key signed", ring, ed(edH, claimsOf(`"pad":"\x41"`)), token.ErrMalformed},
		{"claims with a short \\u escape, our key signed", ring, ed(edH, claimsOf(`"pad":"\u004"`)), token.ErrMalformed},
		{"claims with single quotes, our key signed", ring, ed(edH, claimsOf(`'pad':1`)), token.ErrMalformed},
		{"claims with an unquoted name, our key signed", ring, ed(edH, claimsOf(`pad:1`)), token.ErrMalformed},
		{"claims with NaN, our key signed", ring, ed(edH, claimsOf(`"pad":NaN`)), token.ErrMalformed},
		{"claims with a leading zero, our key signed", ring, ed(edH, claimsOf(`"pad":01`)), token.ErrMalformed},
		{"claims with 33 members, our key signed", ring, ed(edH, claimsOf(func() []string {
			var m []string
			for i := range 29 {
				m = append(m, fmt.Sprintf(`"p%d":0`, i))
			}
			return m
		}()...)), token.ErrMalformed},
		{"control: claims with 32 members", ring, ed(edH, claimsOf(func() []string {
			var m []string
			for i := range 28 {
				m = append(m, fmt.Sprintf(`"p%d":0`, i))
			}
			return m
		}()...)), nil},
		{"claims nested 17 deep, our key signed", ring, ed(edH, claimsOf(`"pad":`+strings.Repeat("[", 17)+strings.Repeat("]", 17))), token.ErrMalformed},
		{"header nested 1000 deep, our key signed", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","x":%s%s}`, k.edKID, strings.Repeat("[", 1000), strings.Repeat("]", 1000)), claimsOf()), token.ErrMalformed},
		{"control: claims nested 16 deep", ring, ed(edH, claimsOf(`"pad":`+strings.Repeat("[", 16)+strings.Repeat("]", 16))), nil},
		{"exp with a leading zero", ring, ed(edH, withStd([]string{"exp"}, "exp", "0"+fmt.Sprint(exp))), token.ErrMalformed},
		{"exp -0", ring, ed(edH, withStd([]string{"exp"}, "exp", "-0")), token.ErrMalformed},
		{"exp with a plus sign", ring, ed(edH, withStd([]string{"exp"}, "exp", "+"+fmt.Sprint(exp))), token.ErrMalformed},
		{"exp 1 followed by 300 zeros", ring, ed(edH, withStd([]string{"exp"}, "exp", "1"+strings.Repeat("0", 300))), token.ErrMalformed},
		{"iat with a fraction of zero", ring, ed(edH, withStd([]string{"iat"}, "iat", fmt.Sprint(iat)+".0")), token.ErrMalformed},
		{"sub empty", ring, ed(edH, claimsOf(`"sub":""`)), token.ErrMalformed},
		{"sub null", ring, ed(edH, claimsOf(`"sub":null`)), token.ErrMalformed},
		{"sub an escaped control character", ring, ed(edH, claimsOf(`"sub":"a\u0007b"`)), token.ErrMalformed},
		{"sub not UTF-8", ring, ed(edH, claimsOf("\"sub\":\"a\xffb\"")), token.ErrMalformed},
		{"iss escaped to another issuer", ring, ed(edH, withStd([]string{"iss"}, "iss", `"sessiond\u0000"`)), token.ErrIssuer},
		{"iss empty", ring, ed(edH, withStd([]string{"iss"}, "iss", `""`)), token.ErrMalformed},
		{"iss null", ring, ed(edH, withStd([]string{"iss"}, "iss", `null`)), token.ErrMalformed},
		{"aud a list with a number", ring, ed(edH, claimsOf(`"aud":["x",1]`)), token.ErrMalformed},
		{"alg escaped to none", ring, atkSign(tb, "none", nil, fmt.Sprintf(`{"alg":"\u006eone","kid":%q,"typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrSignature},
		{"typ escaped to JWT", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"\u004aWT"}`, k.edKID), claimsOf()), token.ErrType},

		// exp, under our own signature: required, whole seconds, in range.
		{"exp missing", ring, ed(edH, withStd([]string{"exp"})), token.ErrMalformed},
		{"exp null", ring, ed(edH, withStd([]string{"exp"}, "exp", "null")), token.ErrMalformed},
		{"exp a string", ring, ed(edH, withStd([]string{"exp"}, "exp", `"9999999999"`)), token.ErrMalformed},
		{"exp true", ring, ed(edH, withStd([]string{"exp"}, "exp", "true")), token.ErrMalformed},
		{"exp an object", ring, ed(edH, withStd([]string{"exp"}, "exp", `{"$date":9999999999}`)), token.ErrMalformed},
		{"exp fractional", ring, ed(edH, withStd([]string{"exp"}, "exp", fmt.Sprintf("%d.5", exp))), token.ErrMalformed},
		{"exp with an exponent", ring, ed(edH, withStd([]string{"exp"}, "exp", "9.999999999e9")), token.ErrMalformed},
		{"exp 1e300", ring, ed(edH, withStd([]string{"exp"}, "exp", "1e300")), token.ErrMalformed},
		{"exp 2^63", ring, ed(edH, withStd([]string{"exp"}, "exp", "9223372036854775808")), token.ErrMalformed},
		{"exp 2^63-1", ring, ed(edH, withStd([]string{"exp"}, "exp", "9223372036854775807")), token.ErrMalformed},
		{"exp 9.2e18 as an integer", ring, ed(edH, withStd([]string{"exp"}, "exp", "9200000000000000000")), token.ErrMalformed},
		{"exp after year 9999", ring, ed(edH, withStd([]string{"exp"}, "exp", "253402300800")), token.ErrMalformed},
		{"exp negative", ring, ed(edH, withStd([]string{"exp"}, "exp", "-1")), token.ErrMalformed},
		{"exp in the past", ring, ed(edH, withStd([]string{"exp"}, "exp", fmt.Sprint(iat-1))), token.ErrExpired},
		{"exp now", ring, ed(edH, withStd([]string{"exp"}, "exp", fmt.Sprint(iat))), token.ErrExpired},
		{"exp 0", ring, ed(edH, withStd([]string{"exp"}, "exp", "0")), token.ErrExpired},

		// iat and nbf.
		{"iat in the future", ring, ed(edH, withStd([]string{"iat"}, "iat", fmt.Sprint(iat+60))), token.ErrNotYetValid},
		{"iat missing", ring, ed(edH, withStd([]string{"iat"})), token.ErrMalformed},
		{"iat a string", ring, ed(edH, withStd([]string{"iat"}, "iat", fmt.Sprintf(`"%d"`, iat))), token.ErrMalformed},
		{"iat fractional", ring, ed(edH, withStd([]string{"iat"}, "iat", fmt.Sprintf("%d.5", iat-10))), token.ErrMalformed},
		{"nbf in the future", ring, ed(edH, claimsOf(fmt.Sprintf(`"nbf":%d`, iat+60))), token.ErrNotYetValid},
		{"nbf a string", ring, ed(edH, claimsOf(fmt.Sprintf(`"nbf":"%d"`, iat-60))), token.ErrMalformed},
		{"nbf after year 9999", ring, ed(edH, claimsOf(`"nbf":1e300`)), token.ErrMalformed},

		// iss and aud.
		{"iss wrong", ring, ed(edH, withStd([]string{"iss"}, "iss", `"evil"`)), token.ErrIssuer},
		{"iss wrong in case", ring, ed(edH, withStd([]string{"iss"}, "iss", `"Sessiond"`)), token.ErrIssuer},
		{"iss missing", ring, ed(edH, withStd([]string{"iss"})), token.ErrMalformed},
		{"iss a number", ring, ed(edH, withStd([]string{"iss"}, "iss", "1")), token.ErrMalformed},
		{"iss wrong, verifier WithIssuer(\"\")", emptyIss, ed(edH, withStd([]string{"iss"}, "iss", `"evil"`)), token.ErrIssuer},
		{"iss missing, verifier WithIssuer(\"\")", emptyIss, ed(edH, withStd([]string{"iss"})), token.ErrMalformed},
		{"aud a number", ring, ed(edH, claimsOf(`"aud":1`)), token.ErrMalformed},

		// Not a JWS compact serialisation.
		{"JWE, five segments", ring, atkSeg(fmt.Sprintf(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":%q,"typ":"session+jwt"}`, k.edKID)) +
			".AAAA.AAAAAAAAAAAAAAAA." + atkSeg(claimsOf()) + ".AAAAAAAAAAAAAAAAAAAAAA", token.ErrMalformed},
		{"JWE header on three segments", ring, ed(fmt.Sprintf(`{"alg":"dir","enc":"A256GCM","kid":%q,"typ":"session+jwt"}`, k.edKID), claimsOf()), token.ErrSignature},
		{"nested JWT signed by our key", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","cty":"JWT"}`, k.edKID), issued), token.ErrMalformed},
		// The signature is checked before the payload is read, so these
		// fail on their outer header.
		{"nested JWT, our token inside an attacker's", ring, atkSign(tb, "EdDSA", k.evil,
			fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"session+jwt","cty":"JWT"}`, k.evilKID), issued), token.ErrUnknownKey},
		{"nested JWT, our token inside an unsigned one", ring, atkSign(tb, "none", nil,
			fmt.Sprintf(`{"alg":"none","kid":%q,"typ":"session+jwt","cty":"JWT"}`, k.edKID), issued), token.ErrSignature},
		{"JSON serialisation", ring, fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":"AAAA"}`, atkSeg(claimsOf()), atkSeg(edH)), token.ErrMalformed},

		// typ: every JWT the keys sign is typed; no other kind passes.
		{"typ JWT", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"JWT"}`, k.edKID), claimsOf()), token.ErrType},
		{"typ at+jwt", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"at+jwt"}`, k.edKID), claimsOf()), token.ErrType},
		{"typ revocations+jwt", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"revocations+jwt"}`, k.edKID), claimsOf()), token.ErrType},
		{"typ missing", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q}`, k.edKID), claimsOf()), token.ErrType},
		{"typ empty", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":""}`, k.edKID), claimsOf()), token.ErrType},
		{"typ a list", ring, ed(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":["session+jwt"]}`, k.edKID), claimsOf()), token.ErrType},
		{"typ changed after signing", ring, func() string {
			_, c, s := atkParts(good)
			return atkSeg(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"JWT"}`, k.edKID)) + "." + c + "." + s
		}(), token.ErrType},

		// Size and shape.
		{"one byte over MaxSize, validly signed", ring, overMax, token.ErrTooLarge},
		{"valid token padded past MaxSize", ring, issued + strings.Repeat("A", token.MaxSize), token.ErrTooLarge},
		{"4000 dots", ring, strings.Repeat(".", 4000), token.ErrMalformed},
		{"valid token and 3000 dots", ring, issued + strings.Repeat(".", 3000), token.ErrMalformed},
		{"100000 dots", ring, strings.Repeat(".", 100000), token.ErrTooLarge},
		{"empty", ring, "", token.ErrMalformed},
		{"two dots", ring, "..", token.ErrMalformed},
		{"header not JSON", ring, atkSeg("EdDSA") + "." + atkSeg(claimsOf()) + ".AAAA", token.ErrMalformed},
		{"claims a JSON list", ring, ed(edH, `["sessiond"]`), token.ErrMalformed},
		{"iss not UTF-8", ring, ed(edH, withStd([]string{"iss"}, "iss", "\"sessiond\xff\"")), token.ErrIssuer},

		// Keys taken away.
		{"signed by a removed key, verified before", removedRing, removedTok, token.ErrUnknownKey},
		{"signed by a removed key", removedRing, removedFresh, token.ErrUnknownKey},

		// jti.
		{"jti not a UUID", ring, ed(edH, atkClaimsWith("session-1")), token.ErrMalformed},
		{"jti missing", ring, ed(edH, withStd([]string{"jti"})), token.ErrMalformed},
		{"jti empty", ring, ed(edH, atkClaimsWith("")), token.ErrMalformed},
		{"jti a number", ring, ed(edH, withStd([]string{"jti"}, "jti", "12345")), token.ErrMalformed},
		{"jti in braces", ring, ed(edH, atkClaimsWith("{"+newID().String()+"}")), token.ErrMalformed},
		{"jti urn:uuid:", ring, ed(edH, atkClaimsWith(newID().URN())), token.ErrMalformed},
		{"jti without dashes", ring, ed(edH, atkClaimsWith(strings.ReplaceAll(newID().String(), "-", ""))), token.ErrMalformed},

		// Revocation: a closed session stays closed.
		{"closed token replayed", rev, closed, token.ErrRevoked},
		{"closed, jti in upper case", rev, upper, token.ErrRevoked},
	}
	return &atkSuite{keys: k, cases: cases, issued: []string{issued, closed}}
}

func TestVerifyAttacks(t *testing.T) {
	var fetches atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		http.Error(w, "not here", http.StatusNotFound)
	}))
	defer evil.Close()
	suite := newAtkSuite(t, evil.URL+"/jwks.json")
	ctx := context.Background()
	seen := map[string]bool{}
	controls, attacks := 0, 0
	for _, tt := range suite.cases {
		if seen[tt.name] {
			t.Fatalf("two cases named %q", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Verify(ctx, tt.tok)
			// Again: a token that verified is now in the verifier's cache,
			// and the answer must not change.
			if again, err2 := tt.v.Verify(ctx, tt.tok); again != got || (err == nil) != (err2 == nil) || err != nil && !errors.Is(err2, tt.want) {
				t.Errorf("Verify() again = %+v, %v; first %+v, %v", again, err2, got, err)
			}
			if tt.want == nil {
				controls++
				if err != nil {
					t.Fatalf("Verify() error = %v, want nil", err)
				}
				if got.ID == uuid.Nil || got.KeyID == "" || got.Expires.IsZero() {
					t.Errorf("Verify() = %+v, want the token's claims", got)
				}
				return
			}
			attacks++
			if !errors.Is(err, token.ErrInvalid) || !errors.Is(err, tt.want) {
				t.Fatalf("Verify() error = %v, want %v (and ErrInvalid)", err, tt.want)
			}
			if got != (token.Claims{}) {
				t.Errorf("Verify() = %+v with an error, want zero claims", got)
			}
		})
	}
	if controls < 10 || attacks < 100 {
		t.Errorf("%d controls, %d attacks: the table has lost cases", controls, attacks)
	}
	if n := fetches.Load(); n != 0 {
		t.Errorf("the URLs in jku/x5u got %d requests, want none", n)
	}
}
