package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

func (p *process) jwksURL() string { return p.url + ".well-known/jwks.json" }

// privateMembers are the JWK members that carry private key material.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// getJWKS fetches the served JWK Set and fails on any private member.
func getJWKS(url string) (body []byte, kids []string, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("JWKS %s: %v", body, err)
	}
	for _, k := range doc.Keys {
		for _, m := range privateMembers {
			if _, ok := k[m]; ok {
				return nil, nil, fmt.Errorf("JWKS key %v has the private member %q", k["kid"], m)
			}
		}
		kid, _ := k["kid"].(string)
		kids = append(kids, kid)
	}
	return body, kids, nil
}

func jwksKids(t *testing.T, p *process) []string {
	t.Helper()
	_, kids, err := getJWKS(p.jwksURL())
	if err != nil {
		t.Fatal(err)
	}
	return kids
}

// loadTok is a token the load loop opened.
type loadTok struct {
	tok, kid            string
	requested, received time.Time // around open_session: it was signed in between
	exp                 time.Time
	closed              bool
}

func (o loadTok) String() string {
	return fmt.Sprintf("token of %s opened %s-%s, expiring %s (closed %v)",
		o.kid, stamp(o.requested), stamp(o.received), stamp(o.exp), o.closed)
}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }

// jwksSnapshot is one JWK Set the poller saw, requested at start.
type jwksSnapshot struct {
	start time.Time
	kids  []string
}

// failures collects what went wrong in the load goroutines.
type failures struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (f *failures) report(t *testing.T, what string) {
	t.Helper()
	if f.n > 0 {
		t.Errorf("%d %s; the first ones:\n%s", f.n, what, strings.Join(f.first, "\n"))
	}
}

func (f *failures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < 10 {
		f.first = append(f.first, fmt.Sprintf(format, args...))
	}
}

// Rotation on a live service under continuous load: sessions are opened and
// verified (by the server and offline) in a loop while keys rotate from the
// first EdDSA key to another EdDSA key, then ES256, then RS256, through
// activation, retirement and prune. No live token may fail verification
// anywhere; each token is signed by the key active when it was issued; a
// new key is published at least the JWKS max-age before it signs; expired
// keys leave the JWKS.
func TestRotationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("rotation under load takes about 15 s")
	}
	const (
		maxAge  = time.Second     // --jwks-max-age
		maxLife = 4 * time.Second // --max-expires-in
		// slack absorbs the scheduling delays of a busy machine in the
		// timing checks; it is much smaller than what they look for.
		slack = 250 * time.Millisecond
	)
	flags := []string{"--jwks-max-age", maxAge.String(), "--max-expires-in", maxLife.String()}
	dir := dataDir(t)
	p := startInProcess(t, dir, flags...)
	offline := token.NewVerifier(token.NewRemoteJWKS(p.jwksURL(), token.WithJWKSMinInterval(100*time.Millisecond)))

	var (
		mu        sync.Mutex
		opened    []loadTok
		snapshots []jwksSnapshot
		checks    int
		fail      failures
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // also when the test fails early

	checkServer := func(o loadTok) {
		before := time.Now()
		active, err := p.client.VerifySessionToken(context.Background(), o.tok)
		after := time.Now()
		switch {
		case err != nil:
			fail.add("server: verify of %s: %v", o, err)
		case o.closed && active:
			fail.add("server: %s is closed but active at %s", o, stamp(after))
		case !o.closed && !active && after.Before(o.exp):
			fail.add("server: %s is inactive at %s", o, stamp(after))
		case active && !before.Before(o.exp):
			fail.add("server: %s is active at %s, after its expiry", o, stamp(before))
		}
	}
	checkOffline := func(o loadTok) {
		before := time.Now()
		claims, err := offline.Verify(context.Background(), o.tok)
		after := time.Now()
		switch {
		case err != nil && after.Before(o.exp): // closed or not: offline does not see revocations
			fail.add("offline: %s failed at %s: %v", o, stamp(after), err)
		case err == nil && !before.Before(o.exp):
			fail.add("offline: %s verified at %s, after its expiry", o, stamp(before))
		case err == nil && claims.KeyID != o.kid:
			fail.add("offline: claims.KeyID = %s, want %s", claims.KeyID, o.kid)
		}
	}
	for w := range 3 {
		wg.Go(func() {
			rng := mathrand.New(mathrand.NewPCG(uint64(w), 42))
			var live []loadTok
			for i := 0; ctx.Err() == nil; i++ {
				o := loadTok{requested: time.Now()}
				res, err := p.client.OpenSession(context.Background(), time.Duration(2+rng.IntN(3))*time.Second)
				o.received = time.Now()
				if err != nil {
					fail.add("open_session: %v", err)
					return
				}
				o.tok = res.AccessToken
				if o.kid, o.exp, err = inspect(o.tok); err != nil {
					fail.add("open_session: %v", err)
					return
				}
				if i%5 == 4 {
					if err := p.client.CloseSession(context.Background(), o.tok); err != nil {
						fail.add("close_session: %v", err)
					}
					o.closed = true
				}
				mu.Lock()
				opened = append(opened, o)
				mu.Unlock()
				live = append(live, o)
				n := 0
				live = slices.DeleteFunc(live, func(o loadTok) bool {
					if time.Now().After(o.exp.Add(time.Second)) {
						return true // long expired: done with it
					}
					checkServer(o)
					checkOffline(o)
					n++
					return false
				})
				mu.Lock()
				checks += n
				mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	// The JWKS as a verifier that refreshes on schedule sees it.
	wg.Go(func() {
		for ctx.Err() == nil {
			s := jwksSnapshot{start: time.Now()}
			_, kids, err := getJWKS(p.jwksURL())
			if err != nil {
				fail.add("JWKS: %v", err)
				return
			}
			s.kids = kids
			mu.Lock()
			snapshots = append(snapshots, s)
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})

	// firstSigned waits until the load has a token signed by kid and
	// returns when the first one was received.
	firstSigned := func(kid string, within time.Duration) time.Time {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			mu.Lock()
			first := time.Time{}
			for _, o := range opened {
				if o.kid == kid && (first.IsZero() || o.received.Before(first)) {
					first = o.received
				}
			}
			mu.Unlock()
			if !first.IsZero() {
				return first
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no token signed by %s within %s\n%s", kid, within, p.stderr)
		return time.Time{}
	}

	// The lifecycle as the key commands see it.
	list := listKeys(t, dir, flags...)
	if len(list) != 1 || list[0].State != keys.Active {
		t.Fatalf("keys at start = %+v, want one active key", list)
	}
	kids := []string{list[0].ID}
	activates := map[string]time.Time{list[0].ID: list[0].Activates}
	firstUse := map[string]time.Time{}
	for _, alg := range []keys.Algorithm{keys.EdDSA, keys.ES256, keys.RS256} {
		kid := rotate(t, dir, append(flags, "--alg", string(alg))...)
		k := findKey(listKeys(t, dir, flags...), kid)
		if k == nil || k.State != keys.Next || k.Algorithm != string(alg) {
			t.Fatalf("after rotate: key %s = %+v, want a next %s key", kid, k, alg)
		}
		kids, activates[kid] = append(kids, kid), k.Activates
		firstUse[kid] = firstSigned(kid, time.Until(k.Activates)+5*time.Second)
	}

	// Wait until the first two keys can have no live token, then prune.
	// (The server prunes by itself too, so prune may find nothing left.)
	expires := func(i int) time.Time { return activates[kids[i+1]].Add(maxLife) }
	time.Sleep(time.Until(expires(1)) + slack)
	keysCmd(t, dir, "prune", flags...)
	list = listKeys(t, dir, flags...)
	for i, kid := range kids {
		if got, want := findKey(list, kid) != nil, i >= 2; got != want {
			t.Errorf("after prune: key %d (%s) listed = %v, want %v", i, kid, got, want)
		}
	}
	if k := findKey(list, kids[2]); k == nil || k.State != keys.Retired {
		t.Errorf("key 2 after prune = %+v, want retired", k)
	}
	if got := jwksKids(t, p); !slices.Equal(got, kids[2:]) {
		t.Errorf("JWKS kids after prune = %v, want %v", got, kids[2:])
	}
	// A little more load on the last two keys, then stop.
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d sessions opened, %d verifications each on the server and offline, %d JWKS fetches",
		len(opened), checks, len(snapshots))
	fail.report(t, "failed verifications")

	// Each token is signed by a key that was active at some moment while
	// open_session ran.
	var wrongKey, unpublished, stale failures
	perKey := map[string]int{}
	for _, o := range opened {
		var allowed []string
		for i, kid := range kids {
			from, until := activates[kid], time.Time{}
			if i+1 < len(kids) {
				until = activates[kids[i+1]]
			}
			if !o.received.Before(from) && (until.IsZero() || o.requested.Before(until)) {
				allowed = append(allowed, kid)
			}
		}
		if !slices.Contains(allowed, o.kid) {
			wrongKey.add("%s, want one signed by %v (activations %v)", o, allowed, activates)
		}
		perKey[o.kid]++
	}
	for _, kid := range kids {
		if perKey[kid] < 3 {
			t.Errorf("only %d tokens signed by %s: not much of a test", perKey[kid], kid)
		}
	}

	for i, kid := range kids {
		for _, s := range snapshots {
			// A verifier that fetched the set up to max-age before the
			// first token of a key was issued already knows the key.
			if first, ok := firstUse[kid]; ok && s.start.After(first.Add(-maxAge+slack)) && s.start.Before(first) && !slices.Contains(s.kids, kid) {
				unpublished.add("JWKS requested at %s, less than %s before the first token of %s (%s), does not have it",
					stamp(s.start), maxAge, kid, stamp(first))
			}
			// Once the last token a key can have signed has expired, the
			// key is no longer published.
			if i < 2 && s.start.After(expires(i)) && slices.Contains(s.kids, kid) {
				stale.add("JWKS requested at %s still has key %d (%s), which expired at %s",
					stamp(s.start), i, kid, stamp(expires(i)))
			}
		}
	}
	wrongKey.report(t, "tokens signed by a key that was not active")
	unpublished.report(t, "keys that signed before verifiers could know them")
	stale.report(t, "expired keys still published")
}

// tamper gives a token a much later expiry and keeps its signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	raw = []byte(strings.Replace(string(raw), `"exp":`, `"exp":1`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// signingKey is a issue.SigningKeys over one key of the server's key file,
// for forging tokens the server would have signed.
type signingKey struct{ *keys.Key }

func (k signingKey) SigningKey() (kid, alg string, key crypto.Signer, err error) {
	return k.ID, string(k.Algorithm), k.Signer(), nil
}

// sign makes a JWT with the given header members (nil deletes one).
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims, hdr map[string]any) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, claims)
	for k, v := range hdr {
		if v == nil {
			delete(tk.Header, k)
		} else {
			tk.Header[k] = v
		}
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// Offline verification — the token package from a JWKS URL or file, and
// `sessiond verify` — accepts exactly the tokens the server accepts,
// revocation aside, for keys of every algorithm; algorithm confusion is
// rejected everywhere; the JWKS has no private member.
func TestOfflineVerification(t *testing.T) {
	dir := dataDir(t)
	p := startInProcess(t, dir)
	ctx := context.Background()
	res, err := p.client.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	edTok := res.AccessToken
	rsKid := rotate(t, dir, "--alg", "RS256", "--now")
	p.hup(t)
	rsTok := p.openWithKid(t, rsKid, 5*time.Second)
	esKid := rotate(t, dir, "--alg", "ES256", "--now")
	p.hup(t)
	esTok := p.openWithKid(t, esKid, 5*time.Second)
	closedTok := p.openWithKid(t, esKid, 0)
	if err := p.client.CloseSession(ctx, closedTok); err != nil {
		t.Fatal(err)
	}

	body, kids, err := getJWKS(p.jwksURL()) // fails on any private member
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 3 || !slices.Contains(kids, rsKid) || !slices.Contains(kids, esKid) || !slices.Contains(kids, kidOf(t, edTok)) {
		t.Fatalf("JWKS kids = %v, want the EdDSA, RS256 and ES256 keys", kids)
	}
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, body, 0o644); err != nil {
		t.Fatal(err)
	}

	// Forge tokens with the server's own keys, and with others.
	set, err := keys.Load(filepath.Join(dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	esKey, rsKey := set.Lookup(esKid), set.Lookup(rsKid)
	issue := func(k *keys.Key, issuer string, at time.Time, lifetime time.Duration) string {
		t.Helper()
		tok, _, err := issue.New(signingKey{k}, issue.WithIssuer(issuer), issue.WithClock(func() time.Time { return at })).Issue(lifetime)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{
		ID: uuid.NewString(), Issuer: token.DefaultIssuer,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
	stranger, err := keys.Generate(keys.ES256, 0, now, now)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	esPub := esKey.Public().(*ecdsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(esPub)
	point, _ := esPub.Bytes()
	var esJWK []byte
	{
		var doc struct{ Keys []json.RawMessage }
		json.Unmarshal(body, &doc)
		for _, k := range doc.Keys {
			if strings.Contains(string(k), esKid) {
				esJWK = k
			}
		}
	}
	hdr := func(kid string) map[string]any { return map[string]any{"kid": kid, "typ": jose.TypeSession} }
	otherSig := func(tok, from string) string {
		i, j := strings.LastIndex(tok, "."), strings.LastIndex(from, ".")
		return tok[:i] + from[j:]
	}

	tests := []struct {
		name  string
		tok   string
		valid bool
	}{
		{"EdDSA token from the server", edTok, true},
		{"RS256 token from the server", rsTok, true},
		{"ES256 token from the server", esTok, true},
		{"made with the server's ES256 key", issue(esKey, token.DefaultIssuer, now, time.Hour), true},
		{"made with the server's RS256 key", issue(rsKey, token.DefaultIssuer, now, time.Hour), true},
		{"tampered payload", tamper(esTok), false},
		{"signature of another token", otherSig(esTok, closedTok), false},
		{"no signature", esTok[:strings.LastIndex(esTok, ".")+1], false},
		{"expired", issue(esKey, token.DefaultIssuer, now.Add(-2*time.Hour), time.Hour), false},
		{"issued in the future", issue(esKey, token.DefaultIssuer, now.Add(time.Hour), time.Hour), false},
		{"wrong issuer", issue(esKey, "someone-else", now, time.Hour), false},
		{"other key", issue(stranger, token.DefaultIssuer, now, time.Hour), false},
		{"other key under a published kid", sign(t, jwt.SigningMethodES256, rawPrivateKey(t, stranger), claims, hdr(esKid)), false},
		{"wrong typ", sign(t, jwt.SigningMethodES256, rawPrivateKey(t, esKey), claims, map[string]any{"kid": esKid, "typ": "JWT"}), false},
		{"no kid", sign(t, jwt.SigningMethodES256, rawPrivateKey(t, esKey), claims, hdr("")), false},
		{"garbage", "not.a.token", false},
		{"empty", "", false},
		// Algorithm confusion: the header names the ES256 key by kid but
		// says another algorithm.
		{"ES256 kid, alg EdDSA", sign(t, jwt.SigningMethodEdDSA, edPriv, claims, hdr(esKid)), false},
		{"ES256 kid, alg RS256 signed by the server's RSA key", sign(t, jwt.SigningMethodRS256, rawPrivateKey(t, rsKey), claims, hdr(esKid)), false},
		{"ES256 kid, alg HS256 keyed with the public key (DER)", sign(t, jwt.SigningMethodHS256, der, claims, hdr(esKid)), false},
		{"ES256 kid, alg HS256 keyed with the public key (PEM)", sign(t, jwt.SigningMethodHS256, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), claims, hdr(esKid)), false},
		{"ES256 kid, alg HS256 keyed with the public point", sign(t, jwt.SigningMethodHS256, point, claims, hdr(esKid)), false},
		{"ES256 kid, alg HS256 keyed with the JWK", sign(t, jwt.SigningMethodHS256, esJWK, claims, hdr(esKid)), false},
		{"ES256 kid, alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims, hdr(esKid)), false},
		{"RS256 kid, alg ES256 signed by the server's ES256 key", sign(t, jwt.SigningMethodES256, rawPrivateKey(t, esKey), claims, hdr(rsKid)), false},
	}
	if len(esJWK) == 0 {
		t.Fatal("no JWK for the ES256 key")
	}

	remote := token.NewVerifier(token.NewRemoteJWKS(p.jwksURL()))
	fromFile, err := token.LoadJWKS(jwksFile)
	if err != nil {
		t.Fatalf("LoadJWKS(served set) error = %v", err)
	}
	local := token.NewVerifier(fromFile)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active, err := p.client.VerifySessionToken(ctx, tt.tok)
			if err != nil || active != tt.valid {
				t.Errorf("server: active = %v, %v, want %v", active, err, tt.valid)
			}
			for name, v := range map[string]*token.Verifier{"JWKS URL": remote, "JWKS file": local} {
				_, err := v.Verify(ctx, tt.tok)
				if (err == nil) != tt.valid {
					t.Errorf("offline (%s): Verify() error = %v, want valid = %v", name, err, tt.valid)
				}
			}
			r := sessiond(t, commandEnv(), "verify", "--jwks", jwksFile, "--", tt.tok)
			if want := map[bool]int{true: 0, false: 1}[tt.valid]; r.code != want {
				t.Errorf("sessiond verify: exit %d, want %d\n%s", r.code, want, r.stderr)
			}
		})
	}

	t.Run("closed session", func(t *testing.T) {
		if active, err := p.client.VerifySessionToken(ctx, closedTok); active || err != nil {
			t.Errorf("server: active = %v, %v, want false", active, err)
		}
		if _, err := remote.Verify(ctx, closedTok); err != nil {
			t.Errorf("offline: Verify() error = %v; offline verification does not see closed sessions", err)
		}
	})
}

// `sessiond verify --jwks FILE|URL TOKEN`: exit 0 and the claims as JSON on
// stdout when valid, exit 1 and the reason in one line on stderr when not,
// exit 3 when validity cannot be decided.
func TestVerifyCommand(t *testing.T) {
	p := startInProcess(t, dataDir(t), "--issuer", "acme")
	res, err := p.client.OpenSession(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok := res.AccessToken
	unknownKid := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"nope","typ":"session+jwt"}`))
	body, _, err := getJWKS(p.jwksURL())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}

	for name, jwks := range map[string]string{"file": file, "URL": p.jwksURL()} {
		t.Run(name, func(t *testing.T) {
			r := sessiond(t, commandEnv(), "verify", "--jwks", jwks, "--issuer", "acme", tok)
			if r.code != 0 {
				t.Fatalf("verify: exit %d\n%s", r.code, r.stderr)
			}
			var claims struct {
				JTI, KID, ISS string
				IAT, EXP      int64
			}
			if err := json.Unmarshal([]byte(r.stdout), &claims); err != nil {
				t.Fatalf("verify printed %q: %v", r.stdout, err)
			}
			if claims.ISS != "acme" || claims.KID != kidOf(t, tok) || claims.EXP-claims.IAT != 3600 || uuid.Validate(claims.JTI) != nil {
				t.Errorf("verify printed %s", r.stdout)
			}
			// The issuer comes from the environment as for serve.
			if r := sessiond(t, commandEnv("SESSIOND_ISSUER=acme"), "verify", "--jwks", jwks, tok); r.code != 0 {
				t.Errorf("verify with SESSIOND_ISSUER: exit %d\n%s", r.code, r.stderr)
			}

			for _, bad := range []struct {
				name string
				args []string
				want string
			}{
				{"wrong issuer", []string{"--issuer", "sessiond", tok}, "wrong issuer"},
				{"tampered", []string{"--issuer", "acme", tok[:len(tok)-6] + "AAAAAA"}, "signature"},
				{"not a token", []string{"--issuer", "acme", "hello"}, "malformed"},
				{"unknown key", []string{"--issuer", "acme", unknownKid + tok[strings.IndexByte(tok, '.'):]}, `invalid: token is signed by an unknown key: no key "nope"`},
			} {
				r := sessiond(t, commandEnv(), append([]string{"verify", "--jwks", jwks}, bad.args...)...)
				if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, bad.want) {
					t.Errorf("verify (%s): exit %d, stdout %q, stderr %q; want exit 1 and a reason saying %q",
						bad.name, r.code, r.stdout, r.stderr, bad.want)
				}
				// One line, saying each thing once.
				if strings.Count(r.stderr, "\n") != 1 || strings.Count(r.stderr, "token is") > 1 {
					t.Errorf("verify (%s): stderr %q, want one line that says each thing once", bad.name, r.stderr)
				}
			}
		})
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no --jwks", []string{"verify", tok}, 2, "want --jwks"},
		{"no token", []string{"verify", "--jwks", file}, 2, "exactly one TOKEN"},
		{"missing file", []string{"verify", "--jwks", file + ".missing", tok}, 3, "could not decide: --jwks: open"},
		{"not a JWK Set", []string{"verify", "--jwks", "/dev/null", tok}, 3, "could not decide: --jwks: invalid JWK set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := sessiond(t, commandEnv(), tt.args...)
			if r.code != tt.code || r.stdout != "" || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d saying %q", r.code, r.stdout, r.stderr, tt.code, tt.want)
			}
		})
	}

	t.Run("server down", func(t *testing.T) {
		url := p.jwksURL()
		p.stop(t, os.Interrupt)
		r := sessiond(t, commandEnv(), "verify", "--jwks", url, "--issuer", "acme", tok)
		if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, "could not decide") || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 3 (could not decide) saying why", r.code, r.stdout, r.stderr)
		}
	})
}
