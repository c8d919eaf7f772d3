package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/session"
)

// The server names each connection's caller by its remote address: forged
// tokens from 127.0.0.1 spend that address's budget of failed signature
// checks, over one connection or many, and past it its verifications of
// tokens not seen before get -32005, while tokens seen before still answer.
func TestInvalidTokenBudgetByAddress(t *testing.T) {
	srv := open(t, server.Config{InvalidTokenBudget: 3})
	ctx := context.Background()
	cl := client.New("http://"+srv.Addr()+"/", nil)
	seen, err := cl.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatalf("OpenSession() error = %v", err)
	}
	if active, err := cl.VerifySessionToken(ctx, seen.AccessToken); !active || err != nil {
		t.Fatalf("VerifySessionToken() = %v, %v, want true", active, err)
	}
	fresh, err := cl.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatalf("OpenSession() error = %v", err)
	}
	tok := seen.AccessToken
	forged := func(i int) string { return forge(tok, i) }
	for i := range 3 {
		other := client.New("http://"+srv.Addr()+"/", nil) // a new connection each time, same address
		if active, err := other.VerifySessionToken(ctx, forged(i)); active || err != nil {
			t.Fatalf("forged token %d = %v, %v, want false", i, active, err)
		}
	}
	var rpcErr *client.Error
	if _, err := cl.VerifySessionToken(ctx, fresh.AccessToken); !errors.As(err, &rpcErr) || rpcErr.Code != session.CodeTooManyInvalid ||
		!strings.Contains(rpcErr.Message, "too many invalid tokens") {
		t.Errorf("a new token past the budget: %v, want error %d", err, session.CodeTooManyInvalid)
	}
	if active, err := cl.VerifySessionToken(ctx, tok); !active || err != nil {
		t.Errorf("a token seen before, past the budget = %v, %v, want true", active, err)
	}
}

// With the budget off (negative), forged tokens never cost anything but
// their answer.
func TestInvalidTokenBudgetOff(t *testing.T) {
	srv := open(t, server.Config{InvalidTokenBudget: -1})
	ctx := context.Background()
	cl := client.New("http://"+srv.Addr()+"/", nil)
	res, err := cl.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatalf("OpenSession() error = %v", err)
	}
	for i := range 300 {
		if active, err := cl.VerifySessionToken(ctx, forge(res.AccessToken, i)); active || err != nil {
			t.Fatalf("forged token %d = %v, %v, want false", i, active, err)
		}
	}
	if active, err := cl.VerifySessionToken(ctx, res.AccessToken); !active || err != nil {
		t.Errorf("VerifySessionToken() = %v, %v, want true", active, err)
	}
}

// forge returns tok with the i-th character of its signature (i below 40)
// replaced by another base64url character: well formed, authentic to
// nobody, so that refusing it costs a signature check.
func forge(tok string, i int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := []byte(tok)
	at := strings.LastIndexByte(tok, '.') + 1 + i%40
	b[at] = alphabet[(strings.IndexByte(alphabet, b[at])+1+i/40)%len(alphabet)]
	return string(b)
}

// A request refused for its caller's budget gets its answer only after the
// tarpit's delay (about a second), while a request of a token seen before,
// on another connection from the same address, is answered meanwhile.
func TestInvalidTokenBudgetTarpit(t *testing.T) {
	srv := open(t, server.Config{InvalidTokenBudget: 1})
	ctx := context.Background()
	url := "http://" + srv.Addr() + "/"
	cl := client.New(url, nil)
	res, err := cl.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatalf("OpenSession() error = %v", err)
	}
	if active, err := cl.VerifySessionToken(ctx, res.AccessToken); !active || err != nil {
		t.Fatalf("VerifySessionToken() = %v, %v, want true", active, err)
	}
	if active, err := cl.VerifySessionToken(ctx, forge(res.AccessToken, 0)); active || err != nil {
		t.Fatalf("forged token within the budget = %v, %v, want false", active, err)
	}

	start := time.Now()
	refused := make(chan error, 1)
	go func() {
		_, err := client.New(url, &http.Client{Transport: &http.Transport{}}).VerifySessionToken(ctx, forge(res.AccessToken, 1))
		refused <- err
	}()
	time.Sleep(100 * time.Millisecond) // the refusal is being held
	if active, err := cl.VerifySessionToken(ctx, res.AccessToken); !active || err != nil {
		t.Errorf("a token seen before, during another connection's tarpit = %v, %v, want true", active, err)
	}
	select {
	case err := <-refused:
		t.Fatalf("the refusal (%v) came before the other connection's answer", err)
	default:
	}
	var rpcErr *client.Error
	if err := <-refused; !errors.As(err, &rpcErr) || rpcErr.Code != session.CodeTooManyInvalid {
		t.Fatalf("forged token past the budget: %v, want error %d", err, session.CodeTooManyInvalid)
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("the refusal took %v, want the tarpit's second", took)
	}
}
