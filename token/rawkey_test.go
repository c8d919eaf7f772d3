package token_test

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessiond/sessiond/keys"
)

// rawPrivateKey returns k's private key as its concrete type
// (ed25519.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey), for tests that
// sign with golang-jwt, whose ES256 and RS256 take only those types.
// keys.Key.Signer is opaque so that it never prints; the key file is where
// the raw key leaves the keys package, so it is read from there.
func rawPrivateKey(tb testing.TB, k *keys.Key) crypto.Signer {
	tb.Helper()
	var s keys.Set
	s.Add(k)
	path := filepath.Join(tb.TempDir(), "keys.json")
	if err := keys.Save(path, &s); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var file struct {
		Keys []struct {
			PrivateKey []byte `json:"private_key_pkcs8"`
		}
	}
	if err := json.Unmarshal(data, &file); err != nil || len(file.Keys) != 1 {
		tb.Fatalf("key file: %v, %d keys", err, len(file.Keys))
	}
	priv, err := x509.ParsePKCS8PrivateKey(file.Keys[0].PrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	return priv.(crypto.Signer)
}
