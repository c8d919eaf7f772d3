package token

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RemoteOptions configures a [RemoteJWKS]. The zero value is usable.
type RemoteOptions struct {
	// Client fetches the set; nil means a client with a 10-second timeout.
	Client *http.Client
	// DefaultMaxAge is how long a fetched set stays fresh when the response
	// has no Cache-Control max-age; 0 means 5 minutes.
	DefaultMaxAge time.Duration
	// MinInterval is the least time between two fetches, whatever the
	// cause (an expired copy or a token with an unknown kid); 0 means 10
	// seconds. It keeps a flood of tokens with made-up key ids from
	// turning into a flood of requests.
	MinInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// maxJWKSSize bounds a fetched JWK Set.
const maxJWKSSize = 1 << 20

// A RemoteJWKS is a [KeySource] that fetches a JWK Set over HTTP, such as
// sessiond's /.well-known/jwks.json. It keeps the set for as long as the
// response's Cache-Control max-age allows, revalidates with If-None-Match,
// and fetches again (no more often than MinInterval) when a token names a
// key id it does not know, so that a newly published key is found at once.
//
// When a fetch fails, the last good set stays in use and the failure is
// retried after MinInterval: a verifier keeps working through a server
// outage. Until a first fetch succeeds, every look-up fails.
type RemoteJWKS struct {
	url  string
	opts RemoteOptions

	fetchMu sync.Mutex // one fetch at a time
	cur     atomic.Pointer[remoteState]
}

type remoteState struct {
	set        *JWKS // nil until a fetch succeeds
	etag       string
	freshUntil time.Time
	attempted  time.Time // last fetch attempt, successful or not
	err        error     // of the last attempt
}

// NewRemoteJWKS returns a key source for the JWK Set at url. It fetches
// nothing until the first look-up (or [RemoteJWKS.Refresh]).
func NewRemoteJWKS(url string, opts RemoteOptions) *RemoteJWKS {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.DefaultMaxAge <= 0 {
		opts.DefaultMaxAge = 5 * time.Minute
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &RemoteJWKS{url: url, opts: opts}
	r.cur.Store(&remoteState{})
	return r
}

// VerificationKey implements [KeySource].
func (r *RemoteJWKS) VerificationKey(ctx context.Context, kid string) (string, crypto.PublicKey, error) {
	st := r.cur.Load()
	if st.set == nil || !r.opts.Now().Before(st.freshUntil) {
		st = r.fetch(ctx, st)
	}
	if st.set != nil {
		if alg, key, err := st.set.VerificationKey(ctx, kid); err == nil {
			return alg, key, nil
		}
		st = r.fetch(ctx, st) // perhaps a key published since
	}
	if st.set == nil || st.err != nil {
		// Either no set at all, or the kid is missing from a set we could
		// not refresh: whether the key exists is unknown.
		return "", nil, fmt.Errorf("%w: fetch JWK set: %w", ErrKeysUnavailable, st.err)
	}
	return st.set.VerificationKey(ctx, kid)
}

// Refresh fetches the set now (subject to MinInterval) and returns the
// error of the latest attempt.
func (r *RemoteJWKS) Refresh(ctx context.Context) error {
	return r.fetch(ctx, r.cur.Load()).err
}

// fetch fetches the set unless another goroutine has replaced seen
// meanwhile or the last attempt was less than MinInterval ago, and returns
// the current state.
func (r *RemoteJWKS) fetch(ctx context.Context, seen *remoteState) *remoteState {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	st := r.cur.Load()
	now := r.opts.Now()
	if st != seen || !st.attempted.IsZero() && now.Sub(st.attempted) < r.opts.MinInterval {
		return st
	}
	next := *st
	next.attempted = now
	next.err = r.get(ctx, &next, now)
	r.cur.Store(&next)
	return &next
}

func (r *RemoteJWKS) get(ctx context.Context, st *remoteState, now time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	if st.etag != "" && st.set != nil {
		req.Header.Set("If-None-Match", st.etag)
	}
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && st.set != nil:
		st.freshUntil = now.Add(maxAge(resp.Header, r.opts.DefaultMaxAge))
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", r.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", r.url, err)
	}
	if len(data) > maxJWKSSize {
		return fmt.Errorf("GET %s: JWK set larger than %d bytes", r.url, maxJWKSSize)
	}
	set, err := ParseJWKS(data)
	if err != nil {
		return fmt.Errorf("GET %s: %w", r.url, err)
	}
	st.set, st.etag = set, resp.Header.Get("ETag")
	st.freshUntil = now.Add(maxAge(resp.Header, r.opts.DefaultMaxAge))
	return nil
}

// maxAge reads the Cache-Control max-age of h; no-store and no-cache mean
// zero (fetch again when next needed, subject to MinInterval) wherever they
// stand in the header.
func maxAge(h http.Header, def time.Duration) time.Duration {
	age := def
	for _, directive := range strings.Split(h.Get("Cache-Control"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			if secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && secs >= 0 {
				age = time.Duration(min(secs, 7*24*3600)) * time.Second
			}
		}
	}
	return age
}
