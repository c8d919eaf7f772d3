package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/keys"
)

// interopDir holds the Node.js check: verify.mjs and the pinned jose.
var interopDir = filepath.Join("..", "..", "interop")

// nodeVerify runs interop/verify.mjs, which verifies tok with the jose
// library against the JWK Set at jwksURL.
func nodeVerify(t *testing.T, node, jwksURL, tok, issuer string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(interopDir, "verify.mjs"), jwksURL, tok, issuer)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("node: %v", err)
	}
	return r
}

// A mainstream JOSE library in another language (jose, on Node.js)
// verifies sessiond's tokens of every algorithm from the served JWKS URL,
// and rejects what sessiond rejects.
func TestInteropNodeJose(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: install Node.js 20 or later, then run `npm ci --prefix interop`")
	}
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "jose", "package.json")); err != nil {
		t.Skip("interop/node_modules/jose is missing: run `npm ci --prefix interop`")
	}

	dir := dataDir(t)
	p := start(t, dir, "--issuer", "interop")
	res, err := p.client.OpenSession(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[keys.Algorithm]string{keys.EdDSA: res.AccessToken}
	for _, alg := range []keys.Algorithm{keys.ES256, keys.RS256} {
		kid := rotate(t, dir, "--alg", string(alg), "--now")
		p.hup(t)
		tokens[alg] = p.openWithKid(t, kid, 5*time.Second)
	}

	for alg, tok := range tokens {
		t.Run(string(alg), func(t *testing.T) {
			r := nodeVerify(t, node, p.jwksURL(), tok, "interop")
			if r.code != 0 {
				t.Fatalf("node verify.mjs: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			var out struct {
				Header  map[string]any
				Payload struct {
					Iss      string
					Jti      string
					Iat, Exp int64
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("node printed %q: %v", r.stdout, err)
			}
			if out.Header["alg"] != string(alg) || out.Header["kid"] != kidOf(t, tok) || out.Header["typ"] != jose.TypeSession {
				t.Errorf("jose saw header %v, want alg %s, kid %s, typ %s", out.Header, alg, kidOf(t, tok), jose.TypeSession)
			}
			if out.Payload.Iss != "interop" || uuid.Validate(out.Payload.Jti) != nil || out.Payload.Exp-out.Payload.Iat != 3600 {
				t.Errorf("jose saw payload %+v", out.Payload)
			}
		})
	}

	// What sessiond rejects, jose rejects: a tampered token, the wrong
	// issuer, and HS256 keyed with the public key under the ES256 kid.
	tok := tokens[keys.EdDSA]
	if r := nodeVerify(t, node, p.jwksURL(), tamper(tok), "interop"); r.code != 1 {
		t.Errorf("node verify.mjs (tampered token): exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := nodeVerify(t, node, p.jwksURL(), tok, "sessiond"); r.code != 1 || !strings.Contains(r.stderr, "iss") {
		t.Errorf("node verify.mjs (wrong issuer): exit %d, want 1 and a complaint about iss\n%s%s", r.code, r.stdout, r.stderr)
	}
	set, err := keys.Load(filepath.Join(dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	esKid := kidOf(t, tokens[keys.ES256])
	point, err := set.Lookup(esKid).Public().(*ecdsa.PublicKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	forged := sign(t, jwt.SigningMethodHS256, point, jwt.RegisteredClaims{
		ID: uuid.NewString(), Issuer: "interop",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}, map[string]any{"kid": esKid, "typ": jose.TypeSession})
	if r := nodeVerify(t, node, p.jwksURL(), forged, "interop"); r.code != 1 {
		t.Errorf("node verify.mjs (HS256 under the ES256 kid): exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
}
