package token_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sessiond/sessiond/token"
)

// When the JWK Set cannot be fetched, validity is unknown: the error is
// ErrKeysUnavailable, not a verdict that the token is invalid.
func TestKeysUnavailable(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	tok, _, err := token.NewIssuer("", ring, c.Now).Issue(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/jwks.json"
	ln.Close() // nothing listens there any more
	v := token.NewVerifier(token.NewRemoteJWKS(url, token.RemoteOptions{}), token.WithClock(c.Now))
	_, err = v.Verify(context.Background(), tok)
	if !errors.Is(err, token.ErrKeysUnavailable) || errors.Is(err, token.ErrInvalid) {
		t.Errorf("Verify() error = %v, want ErrKeysUnavailable and not ErrInvalid", err)
	}
}
