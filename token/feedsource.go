// This file is the revocation feed client's sync logic: its options, the
// in-memory list, IsRevoked and its freshness rules, and Run and Sync,
// which fetch, verify and apply documents. Keeping the list in a file
// (Load, save) is feedfile.go; the document itself is feed.go.

package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
)

// feedConfig is what the [FeedOption]s set; Issuer, Leeway and Now come
// from the Verifier that owns the feed.
type feedConfig struct {
	Client       *http.Client
	Interval     time.Duration
	MaxStaleness time.Duration
	ServeStale   bool
	File         string
	Issuer       string
	Leeway       time.Duration
	MaxSize      int64
	Now          func() time.Time
	Logger       *slog.Logger
}

// A FeedOption configures the [RevocationFeed] of [WithFeed]. The feed's
// issuer, leeway and clock are its Verifier's.
type FeedOption func(*feedConfig)

// WithFeedClient sets the client that fetches documents (default: one with
// a one-minute timeout; a snapshot of a million ids is 37 MB).
func WithFeedClient(c *http.Client) FeedOption { return func(o *feedConfig) { o.Client = c } }

// WithFeedInterval sets the time between two syncs of [RevocationFeed.Run]
// (default 10 seconds). A session closed on the server is refused here
// within about one interval.
func WithFeedInterval(d time.Duration) FeedOption { return func(o *feedConfig) { o.Interval = d } }

// WithMaxStaleness caps how long after it was issued ("iat") a document
// keeps the list fresh, when that is shorter than the issuer's own
// "fresh_until" (default: the issuer's alone). sessiond may serve a large
// snapshot of an unchanged list for up to a minute, so a cap under a
// minute or so can refuse documents as they arrive.
func WithMaxStaleness(d time.Duration) FeedOption {
	return func(o *feedConfig) { o.MaxStaleness = d }
}

// WithServeStale makes IsRevoked answer from the last list verified,
// however old, instead of failing with [ErrStale] once the list is stale
// (the default, so that no token verifies while the list may be missing
// revocations). The ids on the list stay revoked, but sessions closed
// since it was current keep working. Before any list is loaded IsRevoked
// still fails. A caller that wants yet another behaviour decides on
// errors.Is(err, ErrStale) itself.
func WithServeStale() FeedOption { return func(o *feedConfig) { o.ServeStale = true } }

// WithFeedFile sets where the feed keeps the verified documents it
// receives, and what [RevocationFeed.Run] starts from: a program that
// starts without network then still has the list it had (stale, unless
// the file is recent). See [RevocationFeed.Load].
func WithFeedFile(path string) FeedOption { return func(o *feedConfig) { o.File = path } }

// WithFeedMaxSize bounds a document, fetched or loaded (a longer one is
// refused unread with [ErrTooLarge]), and a loaded file to four times as
// much (default 256 MiB, some 7 million ids).
func WithFeedMaxSize(n int64) FeedOption { return func(o *feedConfig) { o.MaxSize = n } }

// WithFeedLogger sets the logger of sync failures and list replacements
// (default: discard).
func WithFeedLogger(l *slog.Logger) FeedOption { return func(o *feedConfig) { o.Logger = l } }

// A RevocationFeed is a copy of an issuer's revocation list, kept current
// from its revocation feed (sessiond's GET /revocations), that answers
// "revoked?" from memory: it is a [RevocationChecker] for a [Verifier] that
// verifies offline yet refuses closed sessions.
//
//	keys := token.NewRemoteJWKS(base + "/.well-known/jwks.json")
//	v := token.NewVerifier(keys, token.WithFeed(base+"/revocations"))
//	go v.Feed().Run(ctx) // syncs every 10 s until ctx ends
//
// Every document is verified against the key source before anything in it
// is used (see [Verifier.ParseRevocations]); a document that fails is refused and the
// list stays as it was. The first sync fetches the whole list (a snapshot);
// later ones fetch what changed since the list's sequence number (a delta)
// and add it. A snapshot replaces the list: the server sends one when the
// delta cannot be given, for example because its store was replaced (a
// different epoch). Ids whose tokens have expired are dropped from memory.
//
// # Freshness
//
// Each document says until when its issuer vouches for it ("fresh_until",
// the server's --revocations-fresh-for after "iat"). The list is fresh until
// the fresh_until of the newest document applied to it, or iat +
// [WithMaxStaleness] if that is sooner; both are the issuer's
// signed times, so replaying an old document cannot make the list look
// fresher than it is. A document that is no longer fresh when it arrives is
// refused. Once the list is stale (the server unreachable, or an attacker
// holding back documents), IsRevoked fails closed with [ErrStale] unless
// [WithServeStale] says otherwise. The worst case is thus bounded: a
// session closed on the server stops verifying here within one sync
// interval when the feed is reachable, and otherwise no later than the
// fresh-for time after it was closed, when verification stops altogether.
type RevocationFeed struct {
	url    string
	opts   feedConfig
	parser *Verifier // the owner: keys, issuer, leeway and clock for documents
	log    *slog.Logger

	// syncMu serialises syncs and loads; it guards the fields below it.
	syncMu       sync.Mutex
	file         feedFile
	wantSnapshot bool // the file's deltas outgrew its snapshot

	mu       sync.RWMutex // guards list and the status below
	list     feedList
	lastSync time.Time
	lastErr  error

	// started is closed when the first sync (or load, outside Run)
	// begins, attempted when it has ended, well or not: IsRevoked waits
	// for it before it says that no list is loaded.
	started, attempted       chan struct{}
	startOnce, attemptedOnce sync.Once
}

// coldStartGrace is how long IsRevoked waits for a first sync to begin
// when none has: `go feed.Run(ctx)` then Verify must not lose the race to
// the goroutine, but a feed that nobody runs must not hold Verify up.
const coldStartGrace = time.Second

func (f *RevocationFeed) markStarted()   { f.startOnce.Do(func() { close(f.started) }) }
func (f *RevocationFeed) markAttempted() { f.attemptedOnce.Do(func() { close(f.attempted) }) }

// feedList is the list held, replaced as a whole by a snapshot.
type feedList struct {
	loaded     bool
	revoked    map[uuid.UUID]int64 // id → expiry, Unix seconds
	epoch      string
	seq        uint64
	issuedAt   time.Time
	freshUntil time.Time
	retain     time.Duration // of the newest document applied
	minExpiry  int64         // no entry or cutoff expires before; sweep when it has passed
	// cutoffs are the subject cutoffs by hash of the subject; nil when
	// there are none, so that a token with a subject costs no hash then.
	cutoffs map[[32]byte]heldCutoff
}

// heldCutoff is a subject cutoff held: the cutoff second and its expiry,
// Unix seconds.
type heldCutoff struct{ at, exp int64 }

// newRevocationFeed returns the feed of [WithFeed]: it fetches documents
// from url and verifies them as v does. It fetches nothing until
// [RevocationFeed.Run] or [RevocationFeed.Sync]. url may be empty for a
// feed that only loads files.
func newRevocationFeed(url string, v *Verifier, options []FeedOption) *RevocationFeed {
	opts := feedConfig{Issuer: v.issuer, Leeway: v.leeway, Now: v.now}
	for _, opt := range options {
		opt(&opts)
	}
	opts.Issuer, opts.Leeway, opts.Now = v.issuer, v.leeway, v.now
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: time.Minute}
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = 256 << 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RevocationFeed{
		url:       url,
		opts:      opts,
		parser:    v,
		log:       log,
		file:      feedFile{emptyAt: -1},
		started:   make(chan struct{}),
		attempted: make(chan struct{}),
	}
}

// IsRevoked implements [RevocationChecker] from memory. It fails with an
// error matching [ErrStale] (and reports true) when no list is loaded, and
// when the list is stale unless [WithServeStale] says otherwise.
//
// Until the first sync has ended, IsRevoked waits for it (bounded by ctx)
// rather than fail: a verifier started together with the feed
// (`go feed.Run(ctx)`, then Verify) answers from the first list. If no sync
// or load has begun, it waits a second for one, then answers without.
func (f *RevocationFeed) IsRevoked(ctx context.Context, id uuid.UUID) (bool, error) {
	exp, listed, loaded, freshUntil, now := f.lookup(id)
	if !loaded || !now.Before(freshUntil) {
		select {
		case <-f.attempted:
		default:
			if err := f.awaitFirstSync(ctx); err != nil {
				return true, fmt.Errorf("%w: no revocation list loaded yet: waiting for the first sync: %w", ErrStale, err)
			}
			exp, listed, loaded, freshUntil, now = f.lookup(id)
		}
	}
	switch {
	case !loaded:
		return true, fmt.Errorf("%w: no revocation list loaded%s", ErrStale, f.lastFailure())
	case !now.Before(freshUntil) && !f.opts.ServeStale:
		return true, fmt.Errorf("%w: it was fresh until %s%s", ErrStale, freshUntil.Format(time.RFC3339), f.lastFailure())
	}
	return listed && exp > now.Unix(), nil
}

// Cutoff reports the cutoff of subject ("sub"): every token of that
// subject whose "iat" is at or before at was closed at once on the server
// (session.close_all_sessions), and ok is whether the subject has one.
// The list names subjects only by their SHA-256 ([SubjectHash]): Cutoff
// hashes subject and looks the hash up in memory; with no cutoffs held it
// does not even hash. A [Verifier] with the feed refuses such a token with
// [ErrSubjectClosed].
//
// The freshness rules are IsRevoked's (which Verify asks first): with no
// list loaded, or a stale one unless [WithServeStale], it fails with
// [ErrStale], and then also reports ok and a cutoff far in the future, so
// that a caller that ignores the error still refuses the token.
func (f *RevocationFeed) Cutoff(ctx context.Context, subject string) (at time.Time, ok bool, err error) {
	now := f.opts.Now()
	f.mu.RLock()
	loaded, freshUntil, cuts := f.list.loaded, f.list.freshUntil, f.list.cutoffs
	var c heldCutoff
	if len(cuts) > 0 {
		c, ok = cuts[SubjectHash(subject)]
	}
	f.mu.RUnlock()
	switch {
	case !loaded:
		return unknownCutoff, true, fmt.Errorf("%w: no revocation list loaded%s", ErrStale, f.lastFailure())
	case !now.Before(freshUntil) && !f.opts.ServeStale:
		return unknownCutoff, true, fmt.Errorf("%w: it was fresh until %s%s", ErrStale, freshUntil.Format(time.RFC3339), f.lastFailure())
	case !ok || c.exp <= now.Unix():
		return time.Time{}, false, nil
	}
	return time.Unix(c.at, 0).UTC(), true, nil
}

// unknownCutoff is the cutoff Cutoff reports with its errors: after every
// token's "iat".
var unknownCutoff = time.Unix(maxNumericDate, 0).UTC()

// Retention reports how long after a token's expiry the issuer keeps its
// id on the list (see [RevocationList.Retain]); 0 until a list is loaded.
// A [Verifier] whose revocation checker has this method refuses, as
// [ErrExpired], a token past exp + Retention even when its own leeway
// would allow it: the list can no longer say that such a token was closed.
// A checker that wraps the feed should forward it.
func (f *RevocationFeed) Retention() time.Duration {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.list.retain
}

func (f *RevocationFeed) lookup(id uuid.UUID) (exp int64, listed, loaded bool, freshUntil, now time.Time) {
	now = f.opts.Now()
	f.mu.RLock()
	defer f.mu.RUnlock()
	exp, listed = f.list.revoked[id]
	return exp, listed, f.list.loaded, f.list.freshUntil, now
}

// awaitFirstSync waits until the first sync has ended, ctx has, or, when
// no sync has begun, coldStartGrace has passed.
func (f *RevocationFeed) awaitFirstSync(ctx context.Context) error {
	grace := time.NewTimer(coldStartGrace)
	defer grace.Stop()
	select {
	case <-f.attempted:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-grace.C:
		select {
		case <-f.started:
		default:
			return nil // nobody syncs: answer from what there is
		}
	case <-f.started:
	}
	select {
	case <-f.attempted:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lastFailure describes the last sync's error, if any, for ErrStale.
func (f *RevocationFeed) lastFailure() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.lastErr == nil {
		return ""
	}
	return " (last sync: " + f.lastErr.Error() + ")"
}

// FeedStatus describes a [RevocationFeed]'s list and its last sync.
type FeedStatus struct {
	Loaded     bool      // a list is held
	Epoch      string    // of the list held
	Seq        uint64    // of the list held
	Len        int       // ids in memory
	Cutoffs    int       // subject cutoffs in memory
	IssuedAt   time.Time // "iat" of the newest document applied
	FreshUntil time.Time // the list is stale from this instant
	// Retain is how long after a token's expiry the issuer keeps its id
	// on the list, as the newest document applied says (see
	// [RevocationList.Retain]).
	Retain   time.Duration
	LastSync time.Time // of the last successful sync
	LastErr  error     // of the last sync; nil if it succeeded
}

// Status returns the feed's state.
func (f *RevocationFeed) Status() FeedStatus {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return FeedStatus{
		Loaded:     f.list.loaded,
		Epoch:      f.list.epoch,
		Seq:        f.list.seq,
		Len:        len(f.list.revoked),
		Cutoffs:    len(f.list.cutoffs),
		IssuedAt:   f.list.issuedAt,
		FreshUntil: f.list.freshUntil,
		Retain:     f.list.retain,
		LastSync:   f.lastSync,
		LastErr:    f.lastErr,
	}
}

// Run loads the file of [WithFeedFile] if set, then syncs every interval
// ([WithFeedInterval]) until ctx ends. Failures are logged, and the list
// kept; [RevocationFeed.Status] reports the last one.
func (f *RevocationFeed) Run(ctx context.Context) {
	f.markStarted()
	if f.opts.File != "" {
		err := f.load(ctx, f.opts.File)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			f.log.Warn("revocation feed: starting without the saved list", "file", f.opts.File, "err", err)
		default:
			st := f.Status()
			f.log.Info("revocation feed: loaded the saved list", "file", f.opts.File, "seq", st.Seq, "ids", st.Len, "fresh_until", st.FreshUntil)
		}
	}
	t := time.NewTicker(f.opts.Interval)
	defer t.Stop()
	for {
		if err := f.Sync(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("revocation feed: sync failed; keeping the list", "url", f.url, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errGap means a delta that does not follow the list held: another epoch,
// or changes since a later point than the list's. Sync fetches a snapshot.
var errGap = errors.New("changes do not follow the list held")

// Sync fetches the changes since the list held (the whole list the first
// time, or when the changes cannot be applied), verifies and applies them,
// and saves the document to the file of [WithFeedFile] if set. On error the list
// stays as it was.
func (f *RevocationFeed) Sync(ctx context.Context) error {
	f.markStarted()
	defer f.markAttempted()
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	err := f.sync(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastErr = err
	if err == nil {
		f.lastSync = f.opts.Now()
	}
	return err
}

func (f *RevocationFeed) sync(ctx context.Context) error {
	if f.url == "" {
		return errors.New("revocation feed: no URL")
	}
	f.mu.RLock()
	loaded, epoch, seq := f.list.loaded, f.list.epoch, f.list.seq
	f.mu.RUnlock()
	since := seq
	if !loaded || f.wantSnapshot {
		since = 0
	}
	doc, l, err := f.fetch(ctx, since, epoch)
	if err != nil {
		return err
	}
	err = f.apply(l, true)
	if errors.Is(err, ErrOutdated) && loaded && since == 0 && l.Snapshot {
		// A snapshot asked for to start the file again (wantSnapshot)
		// may be the server's shared one, older than the list: take the
		// changes this time, and ask again next time.
		if doc, l, err = f.fetch(ctx, seq, epoch); err != nil {
			return err
		}
		err = f.apply(l, true)
	}
	if errors.Is(err, errGap) {
		f.log.Info("revocation feed: changes do not follow the list; fetching the whole list", "epoch", l.Epoch, "since", l.Since)
		if doc, l, err = f.fetch(ctx, 0, ""); err != nil {
			return err
		}
		err = f.apply(l, true)
	}
	if err != nil {
		return err
	}
	if f.opts.File != "" {
		if err := f.save(doc, l); err != nil {
			f.log.Warn("revocation feed: cannot save the list", "file", f.opts.File, "err", err)
		}
	}
	f.sweep()
	return nil
}

// fetch gets and verifies one document.
func (f *RevocationFeed) fetch(ctx context.Context, since uint64, epoch string) (string, *RevocationList, error) {
	u, err := url.Parse(f.url)
	if err != nil {
		return "", nil, fmt.Errorf("revocation feed URL: %w", err)
	}
	q := u.Query()
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
		q.Set("epoch", epoch)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Accept", "application/"+jose.TypeRevocations)
	resp, err := f.opts.Client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
	}
	var body strings.Builder
	if resp.ContentLength > 0 && resp.ContentLength <= f.opts.MaxSize {
		body.Grow(int(resp.ContentLength))
	}
	if _, err := io.Copy(&body, io.LimitReader(resp.Body, f.opts.MaxSize+1)); err != nil {
		return "", nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	if int64(body.Len()) > f.opts.MaxSize {
		return "", nil, refuse(ErrTooLarge, "GET %s: document larger than WithFeedMaxSize (%d bytes); raise it if the list is that long", u.Redacted(), f.opts.MaxSize)
	}
	doc := strings.TrimSpace(body.String())
	l, err := f.parser.parseRevocations(ctx, doc, f.opts.MaxSize)
	if err != nil {
		return "", nil, err
	}
	return doc, l, nil
}

// deadline is when the list that l brings is no longer fresh.
func (f *RevocationFeed) deadline(l *RevocationList) time.Time {
	if f.opts.MaxStaleness > 0 {
		if capped := l.IssuedAt.Add(f.opts.MaxStaleness); capped.Before(l.FreshUntil) {
			return capped
		}
	}
	return l.FreshUntil
}

// apply applies a verified document to the list. A document fetched now
// must be fresh; one from a file may be stale. No document, fetched or
// loaded, takes the list back: one of the same epoch at a lower seq than
// the list held is refused with ErrOutdated (a replay, or a store restored
// from a backup, which must start a new epoch to be followed), and one at
// the same seq does not make the list look older than it is.
func (f *RevocationFeed) apply(l *RevocationList, fetched bool) error {
	now := f.opts.Now()
	deadline := f.deadline(l)
	if fetched && !now.Before(deadline) {
		return refuse(ErrExpired, "issued %s, fresh until %s", l.IssuedAt.Format(time.RFC3339), deadline.Format(time.RFC3339))
	}
	f.mu.RLock()
	cur := f.list
	f.mu.RUnlock()
	nowUnix := now.Unix()

	if l.Snapshot {
		sameList := cur.loaded && cur.epoch == l.Epoch
		if sameList && l.Seq < cur.seq {
			return refuse(ErrOutdated, "snapshot at seq %d, list at %d", l.Seq, cur.seq)
		}
		next := feedList{
			loaded:     true,
			revoked:    make(map[uuid.UUID]int64, len(l.Revoked)),
			epoch:      l.Epoch,
			seq:        l.Seq,
			issuedAt:   l.IssuedAt,
			freshUntil: deadline,
			retain:     l.Retain,
		}
		if sameList {
			// The list as held is part of this one, so what vouched for
			// it still does: a shared snapshot may be older than the
			// delta that brought the list to the same seq.
			if cur.issuedAt.After(l.IssuedAt) {
				next.retain = cur.retain
			}
			next.issuedAt = later(next.issuedAt, cur.issuedAt)
			next.freshUntil = later(next.freshUntil, cur.freshUntil)
		}
		next.minExpiry = addRevoked(next.revoked, l.Revoked, nowUnix, 0)
		next.cutoffs, next.minExpiry = addCutoffs(nil, l.Cutoffs, nowUnix, next.minExpiry)
		f.mu.Lock()
		f.list = next
		f.mu.Unlock()
		if cur.loaded && cur.epoch != l.Epoch {
			f.log.Info("revocation feed: the issuer's list was replaced (new epoch); replaced ours", "old_epoch", cur.epoch, "epoch", l.Epoch, "ids", len(next.revoked))
		}
		return nil
	}
	switch {
	case !cur.loaded || l.Epoch != cur.epoch || l.Since > cur.seq:
		return errGap
	case l.Seq < cur.seq:
		return refuse(ErrOutdated, "changes up to seq %d, list at %d", l.Seq, cur.seq)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list.minExpiry = addRevoked(f.list.revoked, l.Revoked, nowUnix, f.list.minExpiry)
	f.list.cutoffs, f.list.minExpiry = addCutoffs(f.list.cutoffs, l.Cutoffs, nowUnix, f.list.minExpiry)
	f.list.seq = l.Seq
	if !l.IssuedAt.Before(f.list.issuedAt) {
		f.list.retain = l.Retain
	}
	f.list.issuedAt = later(f.list.issuedAt, l.IssuedAt)
	f.list.freshUntil = later(f.list.freshUntil, deadline)
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// addRevoked adds the unexpired entries of rs to m, keeping the later
// expiry of an id already there, and returns the earliest expiry in m given
// minExpiry, the earliest before (0: m is empty).
func addRevoked(m map[uuid.UUID]int64, rs []Revoked, now, minExpiry int64) int64 {
	for _, r := range rs {
		exp := r.Expires.Unix()
		if exp <= now || exp <= m[r.ID] {
			continue
		}
		m[r.ID] = exp
		if minExpiry == 0 || exp < minExpiry {
			minExpiry = exp
		}
	}
	return minExpiry
}

// addCutoffs adds the unexpired cutoffs of cs to m (nil: none yet, made
// when one is added), keeping the later cutoff and the later expiry of a
// subject already there, and returns m and the earliest expiry as
// addRevoked does. m must not be one that IsRevoked or Cutoff may be
// reading unless the caller holds the write lock.
func addCutoffs(m map[[32]byte]heldCutoff, cs []Cutoff, now, minExpiry int64) (map[[32]byte]heldCutoff, int64) {
	for _, c := range cs {
		exp := c.Expires.Unix()
		if exp <= now {
			continue
		}
		if m == nil {
			m = make(map[[32]byte]heldCutoff, len(cs))
		}
		held := m[c.Subject]
		next := heldCutoff{at: max(held.at, c.At.Unix()), exp: max(held.exp, exp)}
		m[c.Subject] = next
		if minExpiry == 0 || next.exp < minExpiry {
			minExpiry = next.exp
		}
	}
	return m, minExpiry
}

// sweep drops expired ids from memory once the earliest expiry has passed.
// It runs within a sync, so nothing else changes the list meanwhile: the
// ids are found under the read lock, which lets IsRevoked go on, and only
// deleted under the write lock.
func (f *RevocationFeed) sweep() {
	now := f.opts.Now().Unix()
	f.mu.RLock()
	if f.list.minExpiry == 0 || f.list.minExpiry > now {
		f.mu.RUnlock()
		return
	}
	var expired []uuid.UUID
	var expiredCuts [][32]byte
	minExpiry := int64(0)
	for id, exp := range f.list.revoked {
		switch {
		case exp <= now:
			expired = append(expired, id)
		case minExpiry == 0 || exp < minExpiry:
			minExpiry = exp
		}
	}
	for h, c := range f.list.cutoffs {
		switch {
		case c.exp <= now:
			expiredCuts = append(expiredCuts, h)
		case minExpiry == 0 || c.exp < minExpiry:
			minExpiry = c.exp
		}
	}
	f.mu.RUnlock()
	f.mu.Lock()
	for _, id := range expired {
		delete(f.list.revoked, id)
	}
	for _, h := range expiredCuts {
		delete(f.list.cutoffs, h)
	}
	if len(f.list.cutoffs) == 0 {
		f.list.cutoffs = nil
	}
	f.list.minExpiry = minExpiry
	f.mu.Unlock()
}

var _ RevocationChecker = (*RevocationFeed)(nil)
