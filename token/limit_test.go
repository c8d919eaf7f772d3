package token_test

import (
	"context"
	"crypto"
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/token"
)

type gateKey struct{}

// gatedKeys is a KeySource whose look-ups made with a gated context wait
// until the gate opens.
type gatedKeys struct {
	token.KeySource
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedKeys) VerificationKey(ctx context.Context, kid string) (string, crypto.PublicKey, error) {
	if ctx.Value(gateKey{}) != nil {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.KeySource.VerificationKey(ctx, kid)
}

// With a concurrency limit, uncached verifications wait for a slot while
// tokens that verified before go straight through.
func TestConcurrencyLimit(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	iss := issue.New(ring, issue.WithClock(c.Now))
	var toks [3]string
	for i := range toks {
		toks[i], _, _ = iss.Issue(time.Hour)
	}
	keys := &gatedKeys{KeySource: ring, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	v := token.NewVerifier(keys, token.WithClock(c.Now), token.WithConcurrencyLimit(1))
	ctx := context.Background()
	if _, err := v.Verify(ctx, toks[0]); err != nil { // now in the cache
		t.Fatal(err)
	}

	held := make(chan error, 1)
	go func() { // takes the one slot and waits at the gate
		_, err := v.Verify(context.WithValue(ctx, gateKey{}, true), toks[1])
		held <- err
	}()
	<-keys.entered

	waitCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := v.Verify(waitCtx, toks[2]); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, token.ErrInvalid) {
		t.Errorf("second uncached Verify() error = %v, want it to wait for the slot until its context ends", err)
	}
	if _, err := v.Verify(ctx, toks[0]); err != nil {
		t.Errorf("cached Verify() while the slot is taken: error = %v, want none", err)
	}
	close(keys.gate)
	if err := <-held; err != nil {
		t.Errorf("held Verify() error = %v", err)
	}
	if _, err := v.Verify(ctx, toks[2]); err != nil {
		t.Errorf("Verify() once the slot is free: error = %v", err)
	}
}
