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
and refuses a closed session; a list past its fresh-until time is an error
unless --allow-stale. Exit status 0 and the claims as JSON when valid; 1 and
the reason when not.`

func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var jwks, issuer, audience string
	var leeway time.Duration
	fs := newFlagSet("sessiond verify", verifySummary, stderr)
	fs.StringVar(&jwks, "jwks", "", "JWK Set file, or http(s) URL, of the issuer's public keys (required)")
	fs.StringVar(&issuer, "issuer", token.DefaultIssuer, `required "iss" claim`)
	fs.StringVar(&audience, "audience", "", `required "aud" value, if any`)
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
	var keys token.KeySource
	if strings.HasPrefix(jwks, "http://") || strings.HasPrefix(jwks, "https://") {
		keys = token.NewRemoteJWKS(jwks, token.RemoteOptions{})
	} else {
		set, err := token.LoadJWKS(jwks)
		if err != nil {
			return err
		}
		keys = set
	}
	opts := []token.Option{token.WithIssuer(issuer), token.WithLeeway(leeway)}
	if audience != "" {
		opts = append(opts, token.WithAudience(audience))
	}
	if revocations != "" {
		feedOpts := token.FeedOptions{Issuer: issuer, Leeway: leeway}
		if allowStale {
			feedOpts.Stale = token.ServeStale
		}
		var feed *token.RevocationFeed
		var err error
		if strings.HasPrefix(revocations, "http://") || strings.HasPrefix(revocations, "https://") {
			feed = token.NewRevocationFeed(revocations, keys, feedOpts)
			err = feed.Sync(ctx)
		} else {
			feed = token.NewRevocationFeed("", keys, feedOpts)
			err = feed.Load(ctx, revocations)
		}
		if errors.Is(err, token.ErrKeysUnavailable) {
			return fmt.Errorf("revocation list: cannot be verified, so validity is unknown; check that --jwks %s is reachable: %w", jwks, err)
		}
		if err != nil {
			return fmt.Errorf("revocation list: %w", err)
		}
		opts = append(opts, token.WithRevocation(feed))
	}
	claims, err := token.NewVerifier(keys, opts...).Verify(ctx, fs.Arg(0))
	if errors.Is(err, token.ErrInvalid) {
		fmt.Fprintln(stderr, "invalid:", err)
		return exitCode(1)
	}
	if errors.Is(err, token.ErrKeysUnavailable) {
		return fmt.Errorf("validity unknown; check that --jwks %s is reachable: %w", jwks, err)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{
		"jti": claims.ID, "kid": claims.KeyID, "iss": claims.Issuer,
		"iat": claims.IssuedAt.Unix(), "exp": claims.Expires.Unix(),
	})
}
