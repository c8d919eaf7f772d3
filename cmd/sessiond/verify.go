package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sessiond/sessiond/token"
)

const verifySummary = `Usage: sessiond verify --jwks FILE|URL [--revocations FILE|URL] [flags] TOKEN

Verifies TOKEN offline, the way a program using the token package does:
against the published keys (a JWK Set file, or a URL such as
http://127.0.0.1:8080/.well-known/jwks.json), without asking the server
whether the session was closed. With --revocations it also checks the
server's signed revocation list (a URL such as
http://127.0.0.1:8080/revocations, fetched once, or a file saved from it),
and refuses a closed session; a list past its fresh-until time means the
answer is unknown unless --allow-stale.

Exit status:
  0  valid: the claims are printed as JSON on stdout
  1  invalid: the token is not valid (one line on stderr says why)
  2  usage error
  3  could not decide: the keys or the revocation list could not be had
     or used, so validity is unknown; treat the token as not valid (one
     line on stderr says what failed and what to check)`

// The exit statuses of sessiond verify besides 0 (valid) and 2 (usage).
const (
	exitInvalid   exitCode = 1
	exitUndecided exitCode = 3
)

// verify runs sessiond verify. Every failure ends in one line on stderr and
// exitInvalid or exitUndecided.
func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var jwks, issuer string
	var leeway time.Duration
	fs := newFlagSet("sessiond verify", verifySummary, stderr)
	fs.StringVar(&jwks, "jwks", "", "JWK Set file, or http(s) URL, of the issuer's public keys (required)")
	fs.StringVar(&issuer, "issuer", token.DefaultIssuer, `required "iss" claim`)
	fs.DurationVar(&leeway, "leeway", 0, "clock skew allowed when checking exp and iat")
	var revocations string
	var allowStale bool
	fs.StringVar(&revocations, "revocations", "", "revocation list: http(s) URL of the server's GET /revocations, or a file saved from it")
	fs.BoolVar(&allowStale, "allow-stale", false, "with --revocations: use a list past its fresh-until time instead of failing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if jwks == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "sessiond verify: want --jwks and exactly one TOKEN")
		fs.Usage()
		return errUsage
	}
	undecided := func(what string, err error, fix string) error {
		fmt.Fprintf(stderr, "sessiond verify: could not decide: %s: %v%s\n", what, err, fix)
		return exitUndecided
	}
	reachable := "; check that --jwks " + jwks + " is reachable"
	var keys token.KeySource
	if isURL(jwks) {
		keys = token.NewRemoteJWKS(jwks)
	} else {
		set, err := token.LoadJWKS(jwks)
		if err != nil {
			return undecided("--jwks", err, "")
		}
		keys = set
	}
	opts := []token.Option{token.WithIssuer(issuer), token.WithLeeway(leeway)}
	if revocations != "" {
		var feedOpts []token.FeedOption
		if allowStale {
			feedOpts = append(feedOpts, token.WithServeStale())
		}
		url := ""
		if isURL(revocations) {
			url = revocations
		}
		v := token.NewVerifier(keys, append(opts, token.WithFeed(url, feedOpts...))...)
		var err error
		if url != "" {
			err = v.Feed().Sync(ctx)
		} else {
			err = v.Feed().Load(ctx, revocations)
		}
		switch {
		case errors.Is(err, token.ErrKeysUnavailable):
			return undecided("--revocations: the list cannot be verified", err, reachable)
		case err != nil:
			return undecided("--revocations", err, "")
		}
		return report(ctx, v, fs.Arg(0), reachable, stdout, stderr)
	}
	return report(ctx, token.NewVerifier(keys, opts...), fs.Arg(0), reachable, stdout, stderr)
}

// report verifies tok with v and prints the claims, or the one line that
// says why not.
func report(ctx context.Context, v *token.Verifier, tok, reachable string, stdout, stderr io.Writer) error {
	claims, err := v.Verify(ctx, tok)
	switch {
	case errors.Is(err, token.ErrInvalid):
		fmt.Fprintf(stderr, "sessiond verify: invalid: %v\n", err)
		return exitInvalid
	case errors.Is(err, token.ErrKeysUnavailable):
		fmt.Fprintf(stderr, "sessiond verify: could not decide: %v%s\n", err, reachable)
		return exitUndecided
	case errors.Is(err, token.ErrStale):
		fmt.Fprintf(stderr, "sessiond verify: could not decide: %v; fetch a newer list, or pass --allow-stale\n", err)
		return exitUndecided
	case err != nil:
		fmt.Fprintf(stderr, "sessiond verify: could not decide: %v\n", err)
		return exitUndecided
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{
		"jti": claims.ID, "kid": claims.KeyID, "iss": claims.Issuer,
		"iat": claims.IssuedAt.Unix(), "exp": claims.Expires.Unix(),
	})
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }
