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

// remoteConfig is what the [RemoteOption]s set.
type remoteConfig struct {
	Client        *http.Client
	DefaultMaxAge time.Duration
	MinInterval   time.Duration
	Now           func() time.Time
}

// A RemoteOption configures a [RemoteJWKS].
type RemoteOption func(*remoteConfig)

// WithJWKSClient sets the client that fetches the set (default: one with a
// 10-second timeout).
func WithJWKSClient(c *http.Client) RemoteOption { return func(o *remoteConfig) { o.Client = c } }

// WithJWKSMaxAge sets how long a fetched set stays fresh when the response
// has no Cache-Control max-age (default 5 minutes).
func WithJWKSMaxAge(d time.Duration) RemoteOption {
	return func(o *remoteConfig) { o.DefaultMaxAge = d }
}

// WithJWKSMinInterval sets the least time between two fetches, whatever the
// cause (an expired copy or a token with an unknown kid; default 10
// seconds). It keeps a flood of tokens with made-up key ids from turning
// into a flood of requests.
func WithJWKSMinInterval(d time.Duration) RemoteOption {
	return func(o *remoteConfig) { o.MinInterval = d }
}

// WithJWKSClock sets the clock that ages the set (default time.Now).
func WithJWKSClock(now func() time.Time) RemoteOption { return func(o *remoteConfig) { o.Now = now } }

// maxJWKSSize bounds a fetched JWK Set.
const maxJWKSSize = 1 << 20

// A RemoteJWKS is a [KeySource] that fetches a JWK Set over HTTP, such as
// sessiond's /.well-known/jwks.json. It keeps the set for as long as the
// response's Cache-Control max-age allows, revalidates with If-None-Match,
// and fetches again (no more often than [WithJWKSMinInterval] allows) when a token names a
// key id it does not know, so that a newly published key is found at once.
//
// A key in the set held answers at once, whatever the network does: when
// the set is due for a refresh, the refresh runs in the background (one at
// a time, for at most the client's timeout, or 30 seconds without one)
// and the look-up does not wait for it. Only a look-up that the set held
// cannot answer waits for a fetch, and never longer than its context: the
// first ones, before any set was fetched, and those of a key id not in the
// set (when the minimum interval allows a fetch).
//
// When a fetch fails, the last good set stays in use and the failure is
// retried after that interval: a verifier keeps working through a server
// outage. Until a first fetch succeeds, every look-up fails.
type RemoteJWKS struct {
	url  string
	opts remoteConfig

	mu       sync.Mutex // guards inflight
	inflight *remoteFetch
	cur      atomic.Pointer[remoteState]
}

// remoteFetch is a fetch running in the background; done is closed when
// it has stored its result.
type remoteFetch struct{ done chan struct{} }

type remoteState struct {
	set        *JWKS // nil until a fetch succeeds
	etag       string
	freshUntil time.Time
	attempted  time.Time // last fetch attempt, successful or not
	err        error     // of the last attempt
}

// NewRemoteJWKS returns a key source for the JWK Set at url. It fetches
// nothing until the first look-up (or [RemoteJWKS.Refresh]).
func NewRemoteJWKS(url string, options ...RemoteOption) *RemoteJWKS {
	var opts remoteConfig
	for _, opt := range options {
		opt(&opts)
	}
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
	if st.set != nil {
		if alg, key, err := st.set.VerificationKey(ctx, kid); err == nil {
			if !r.opts.Now().Before(st.freshUntil) {
				r.startFetch(st) // in the background; this look-up is answered
			}
			return alg, key, nil
		}
	}
	// No set yet, or perhaps a key published since: wait for a fetch.
	if err := r.wait(ctx, r.startFetch(st)); err != nil {
		return "", nil, fmt.Errorf("%w: fetch JWK set: %w", ErrKeysUnavailable, err)
	}
	st = r.cur.Load()
	if st.set == nil || st.err != nil {
		// Either no set at all, or the kid is missing from a set we could
		// not refresh: whether the key exists is unknown.
		return "", nil, fmt.Errorf("%w: fetch JWK set: %w", ErrKeysUnavailable, st.err)
	}
	return st.set.VerificationKey(ctx, kid)
}

// Refresh fetches the set now (subject to the minimum interval; a fetch already
// running is waited for rather than repeated) and returns the error of the
// latest attempt, or ctx's if it ends first.
func (r *RemoteJWKS) Refresh(ctx context.Context) error {
	if err := r.wait(ctx, r.startFetch(r.cur.Load())); err != nil {
		return err
	}
	return r.cur.Load().err
}

// wait waits for f (nil: nothing to wait for) or the end of ctx.
func (r *RemoteJWKS) wait(ctx context.Context, f *remoteFetch) error {
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFetch starts a fetch in the background unless one is running (it
// returns that one), another goroutine has replaced seen meanwhile, or the
// last attempt was less than the minimum interval ago (it returns nil).
func (r *RemoteJWKS) startFetch(seen *remoteState) *remoteFetch {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight
	}
	st := r.cur.Load()
	now := r.opts.Now()
	if st != seen || !st.attempted.IsZero() && now.Sub(st.attempted) < r.opts.MinInterval {
		return nil
	}
	f := &remoteFetch{done: make(chan struct{})}
	r.inflight = f
	timeout := r.opts.Client.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// The fetch belongs to no caller: it ends by itself within timeout.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		next := *st
		next.attempted = now
		next.err = r.get(ctx, &next, now)
		r.mu.Lock()
		r.cur.Store(&next)
		r.inflight = nil
		r.mu.Unlock()
		close(f.done)
	}()
	return f
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
