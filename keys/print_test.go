package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
)

// secretForms returns the strings that would betray the private half of k
// if they appeared in any output: the raw secret bytes in hex (both cases),
// in base64 (standard and URL alphabets, at each of the three alignments a
// secret can have inside a longer encoded buffer such as PKCS #8), as fmt
// prints a byte slice ("[12 34 …]"), and each secret big.Int (ECDSA and RSA
// D, the RSA primes) in decimal and hex.
func secretForms(t *testing.T, k *keys.Key) []string {
	t.Helper()
	// The Signer is deliberately opaque; the key's own storage format
	// gives the test the private key to look for.
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keys.Create(path, func(s *keys.Set) error { s.Add(k); return nil }); err != nil {
		t.Fatal(err)
	}
	priv := privateKeyOf(t, path)
	var raws [][]byte
	var ints []*big.Int
	switch priv := priv.(type) {
	case ed25519.PrivateKey:
		raws = append(raws, priv.Seed())
	case *ecdsa.PrivateKey:
		raw, err := priv.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
		ints = append(ints, priv.D)
	case *rsa.PrivateKey:
		ints = append(ints, priv.D, priv.Primes[0], priv.Primes[1])
		for _, n := range ints {
			raws = append(raws, n.Bytes())
		}
	default:
		t.Fatalf("private key of type %T", priv)
	}
	var forms []string
	for _, raw := range raws {
		forms = append(forms, hex.EncodeToString(raw[:24]), strings.ToUpper(hex.EncodeToString(raw[:24])))
		forms = append(forms, strings.Trim(fmt.Sprint(raw[:12]), "[]"))
		for off := range 3 {
			chunk := raw[off : off+27] // 27 bytes: 36 base64 characters, no padding
			forms = append(forms, base64.StdEncoding.EncodeToString(chunk), base64.URLEncoding.EncodeToString(chunk))
		}
	}
	for _, n := range ints {
		dec, hx := n.String(), n.Text(16)
		forms = append(forms, dec[:40], hx[:40], strings.ToUpper(hx[:40]))
	}
	return forms
}

// privateKeyOf reads the one private key stored in the key file at path.
func privateKeyOf(t *testing.T, path string) crypto.PrivateKey {
	t.Helper()
	var file struct {
		Keys []struct {
			PrivateKey []byte `json:"private_key_pkcs8"`
		}
	}
	data := readFile(t, path)
	if err := json.Unmarshal(data, &file); err != nil || len(file.Keys) != 1 {
		t.Fatalf("key file %s: %v, %d keys", path, err, len(file.Keys))
	}
	priv, err := x509.ParsePKCS8PrivateKey(file.Keys[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// Nothing that holds key material prints it: a Key, a *Key, a Set, the
// Signer, a Keyring, slices, maps and structs (exported and unexported
// fields) of them, by every fmt verb, the log package, slog's text and JSON
// handlers, and encoding/json.
func TestNothingPrintsPrivateKeys(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.EdDSA, keys.ES256, keys.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			k := generate(t, alg, t0)
			forms := secretForms(t, k)
			path := filepath.Join(t.TempDir(), "keys.json")
			set, err := keys.Create(path, func(s *keys.Set) error { s.Add(k); return nil })
			if err != nil {
				t.Fatal(err)
			}
			ring, err := keys.OpenKeyring(path, policy, keys.KeyringOptions{Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			_, _, ringSigner, err := ring.SigningKey()
			if err != nil {
				t.Fatal(err)
			}
			values := map[string]any{
				"*Key":               k,
				"Key":                *k,
				"[]*Key":             []*keys.Key{k},
				"[]Key":              []keys.Key{*k},
				"map[string]*Key":    map[string]*keys.Key{k.ID: k},
				"*Set":               set,
				"Set":                *set,
				"Signer":             k.Signer(),
				"Keyring.SigningKey": ringSigner,
				"[]crypto.Signer":    []crypto.Signer{k.Signer()},
				"*Keyring":           ring,
				"Keyring.Set":        *ring.Set(),
				"struct, exported": struct {
					K keys.Key
					S crypto.Signer
				}{*k, k.Signer()},
				"struct, unexported": struct {
					k keys.Key
					s crypto.Signer
				}{*k, k.Signer()},
				"struct, unexported *": struct {
					k *keys.Key
					s []crypto.Signer
				}{k, []crypto.Signer{k.Signer()}},
				"struct, unexported []": struct{ k []keys.Key }{[]keys.Key{*k}},
			}
			check := func(t *testing.T, how, out string) {
				t.Helper()
				for _, form := range forms {
					if strings.Contains(out, form) {
						t.Fatalf("%s prints the private key (%q) in %q", how, form, out)
					}
				}
			}
			for name, v := range values {
				t.Run(name, func(t *testing.T) {
					for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "% x", "%100v"} {
						check(t, "fmt "+verb, fmt.Sprintf(verb, v))
					}
					check(t, "fmt.Sprint", fmt.Sprint(v))
					check(t, "fmt.Sprintln", fmt.Sprintln(v))
					var logged bytes.Buffer
					log.New(&logged, "", 0).Print(v)
					check(t, "log.Print", logged.String())
					for _, h := range []struct {
						name string
						new  func(*bytes.Buffer) slog.Handler
					}{
						{"slog text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
						{"slog JSON", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
					} {
						var b bytes.Buffer
						l := slog.New(h.new(&b))
						l.Info("key", "key", v)
						l.Info("key", slog.Any("key", v), slog.Group("g", "key", v))
						l.With("key", v).Info("with")
						check(t, h.name, b.String())
					}
					if data, err := json.Marshal(v); err == nil {
						check(t, "encoding/json", string(data))
					}
				})
			}
			// The redacted forms still say which key it is.
			for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", *k), fmt.Sprintf("%#v", *k)} {
				if !strings.Contains(out, k.ID) {
					t.Errorf("key prints as %q, want its id %s in it", out, k.ID)
				}
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
