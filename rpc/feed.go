package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/token"
)

// DefaultFreshFor is how long a revocation document stays fresh unless
// configured otherwise: how long an offline verifier that can no longer
// reach the feed keeps trusting its copy of the list.
const DefaultFreshFor = 5 * time.Minute

// RevocationsOptions configures a [RevocationsHandler]. The zero value is
// usable.
type RevocationsOptions struct {
	// Issuer is the "iss" of the documents; empty means
	// token.DefaultIssuer.
	Issuer string
	// FreshFor is the time from a document's "iat" to its "fresh_until";
	// 0 means DefaultFreshFor.
	FreshFor time.Duration
	// Rebuild is the least time between two builds of a large snapshot
	// (over 64 KiB), which requests share meanwhile, and how long a delta
	// is shared; 0 means 5 seconds, and it is at most a quarter of
	// FreshFor.
	Rebuild time.Duration
	// MaxDelta is the most entries a delta carries; a request whose delta
	// would carry more gets the (shared) snapshot instead. 0 means 16384.
	MaxDelta int
	// Logger receives build failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Retention reports how long after a token's expiry its id stays on
	// the list, which every document states ("retain", see
	// token.RevocationList.Retain) so that an offline verifier never
	// allows itself more leeway than that; nil means 0.
	Retention func() time.Duration
}

// RevocationsHandler serves the revocation feed: GET /revocations is the
// whole list as a snapshot, GET /revocations?since=SEQ the entries written
// after SEQ (a delta), each a revocation document signed with the active
// key (see [token.RevocationList]). When SEQ cannot be answered with a
// delta (a SEQ ahead of the store, an epoch= parameter that is not the
// store's, or more changes than MaxDelta) the answer is a snapshot, still
// with HTTP 200. A since that is not a whole number is HTTP 400.
//
// A snapshot of a million ids is 37 MB and takes about a second to build
// and sign, so a large one (over 64 KiB) is built at most every Rebuild, by
// one request while the others wait for it, and never under a lock that
// revocation or verification needs; a small one is always current.
// Deltas are built per request (a binary search and their own entries) and
// shared by requests for the same SEQ while the list does not change, for
// up to Rebuild.
type RevocationsHandler struct {
	feed     revocation.Feed
	keys     token.SigningKeys
	issuer   string
	freshFor time.Duration
	rebuild  time.Duration
	reuse    time.Duration // how long an unchanged snapshot is served again
	maxDelta int
	log      *slog.Logger
	now      func() time.Time
	retain   func() time.Duration

	buildMu sync.Mutex // one snapshot build at a time

	mu         sync.Mutex // guards the cache below
	snapshot   *signedDoc
	deltas     map[uint64]*signedDoc // by since, all at deltaSeq of deltaEpoch
	deltaSeq   uint64
	deltaEpoch string
}

// signedDoc is a signed revocation document and what it covers.
type signedDoc struct {
	body      []byte
	epoch     string
	seq       uint64
	built     time.Time
	minExpiry time.Time // of its entries; zero when it has none
}

const (
	maxCachedDeltas    = 256
	maxCachedDeltaSize = 64 << 10
)

// NewRevocationsHandler returns a handler that publishes the list of feed,
// signed by the active key of keys.
func NewRevocationsHandler(feed revocation.Feed, keys token.SigningKeys, opts RevocationsOptions) *RevocationsHandler {
	h := &RevocationsHandler{
		feed:     feed,
		keys:     keys,
		issuer:   opts.Issuer,
		freshFor: opts.FreshFor,
		rebuild:  opts.Rebuild,
		maxDelta: opts.MaxDelta,
		log:      opts.Logger,
		now:      opts.Now,
		retain:   opts.Retention,
	}
	if h.issuer == "" {
		h.issuer = token.DefaultIssuer
	}
	if h.freshFor <= 0 {
		h.freshFor = DefaultFreshFor
	}
	if h.rebuild <= 0 {
		h.rebuild = 5 * time.Second
	}
	h.rebuild = min(h.rebuild, h.freshFor/4)
	h.reuse = max(h.rebuild, min(h.freshFor/4, time.Minute))
	if h.maxDelta <= 0 {
		h.maxDelta = 16384
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.retain == nil {
		h.retain = func() time.Duration { return 0 }
	}
	return h
}

func (h *RevocationsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	var since uint64
	if values, ok := q["since"]; ok {
		var err error
		if len(values) == 1 {
			since, err = strconv.ParseUint(values[0], 10, 64)
		}
		if len(values) != 1 || err != nil {
			http.Error(w, "since must be one whole number: the seq of the list the changes are for", http.StatusBadRequest)
			return
		}
	}
	doc, err := h.document(r.Context(), since, q.Get("epoch"))
	if err != nil {
		h.log.Error("revocation feed", "since", since, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/"+token.RevocationsType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Content-Length", strconv.Itoa(len(doc.body)))
	if len(doc.body) > 1<<20 {
		// A snapshot of a million ids is 37 MB: give a slow client a
		// second per 256 KiB on top of the server's write timeout.
		// (An error means the writer cannot; the server's timeout stays.)
		extra := time.Duration(len(doc.body)>>18) * time.Second
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(30*time.Second + extra))
	}
	w.Write(doc.body)
}

// document returns the document that answers since (0: none) and epoch
// (empty: none).
func (h *RevocationsHandler) document(ctx context.Context, since uint64, epoch string) (*signedDoc, error) {
	if since == 0 {
		return h.snapshotDoc(ctx, nil, 0)
	}
	ch, err := h.feed.Changes(ctx, since)
	if err != nil {
		return nil, err
	}
	// A snapshot for a client that holds the list at since must not take
	// it back to an older state, so a shared one must be at least that
	// recent; unless since is ahead of the store itself (restored from a
	// backup, say), or the client holds another list.
	atLeast := min(since, ch.Seq)
	if epoch != "" && epoch != ch.Epoch {
		atLeast = 0
	}
	switch {
	case ch.Snapshot:
		return h.snapshotDoc(ctx, &ch, atLeast)
	case epoch != "" && epoch != ch.Epoch, len(ch.Entries) > h.maxDelta:
		return h.snapshotDoc(ctx, nil, atLeast)
	}
	return h.deltaDoc(ch, since)
}

// snapshotDoc returns the cached snapshot when it is recent enough and at
// seq atLeast or later, or builds one, from ch if that is a snapshot. One
// request builds while the others wait for it: a snapshot of a million ids
// takes about a second.
func (h *RevocationsHandler) snapshotDoc(ctx context.Context, ch *revocation.Changes, atLeast uint64) (*signedDoc, error) {
	// The build continues for the requests that wait for it even if this
	// one's client goes away.
	ctx = context.WithoutCancel(ctx)
	h.mu.Lock()
	cached := h.snapshot
	h.mu.Unlock()
	if cached != nil && cached.seq >= atLeast && h.usable(ctx, cached, ch) {
		return cached, nil
	}
	h.buildMu.Lock()
	defer h.buildMu.Unlock()
	h.mu.Lock()
	cached = h.snapshot
	h.mu.Unlock()
	if cached != nil && cached.seq >= atLeast && h.now().Sub(cached.built) < h.rebuild && len(cached.body) > maxCachedDeltaSize {
		return cached, nil // built while this request waited
	}
	// Let the old document go before the new one is made: at a million
	// ids each is 37 MB.
	h.mu.Lock()
	h.snapshot = nil
	h.mu.Unlock()
	start := time.Now()
	if ch == nil {
		c, err := h.feed.Changes(ctx, 0)
		if err != nil {
			return nil, err
		}
		ch = &c
	}
	doc, err := h.sign(ch, 0)
	if err != nil {
		return nil, err
	}
	h.log.Debug("revocation snapshot built", "seq", doc.seq, "bytes", len(doc.body), "took", time.Since(start))
	h.mu.Lock()
	h.snapshot = doc
	h.mu.Unlock()
	return doc, nil
}

// usable reports whether the cached snapshot s may be served: it is large
// and younger than Rebuild, or the list has not changed since, none of its
// entries has expired, and it is younger than reuse. ch is the current
// snapshot when the caller has it.
//
// A small snapshot is cheap to build, so it is always current: a verifier
// that holds the list at seq 0 asks for snapshots until the first write, and
// must see that write at once.
func (h *RevocationsHandler) usable(ctx context.Context, s *signedDoc, ch *revocation.Changes) bool {
	if s == nil {
		return false
	}
	now := h.now()
	age := now.Sub(s.built)
	switch {
	case age < h.rebuild && len(s.body) > maxCachedDeltaSize:
		return true
	case age >= h.reuse, !s.minExpiry.IsZero() && !now.Before(s.minExpiry):
		return false
	case ch != nil:
		return ch.Epoch == s.epoch && ch.Seq == s.seq
	}
	c, err := h.feed.Changes(ctx, s.seq)
	return err == nil && c.Epoch == s.epoch && c.Seq == s.seq && (!c.Snapshot || s.seq == 0)
}

// deltaDoc returns the delta ch since since, from the cache if it was
// built in the last Rebuild at the same seq.
func (h *RevocationsHandler) deltaDoc(ch revocation.Changes, since uint64) (*signedDoc, error) {
	h.mu.Lock()
	if h.deltaSeq != ch.Seq || h.deltaEpoch != ch.Epoch {
		h.deltas, h.deltaSeq, h.deltaEpoch = nil, ch.Seq, ch.Epoch
	}
	cached := h.deltas[since]
	h.mu.Unlock()
	if cached != nil && h.now().Sub(cached.built) < h.rebuild {
		return cached, nil
	}
	doc, err := h.sign(&ch, since)
	if err != nil {
		return nil, err
	}
	if len(doc.body) <= maxCachedDeltaSize {
		h.mu.Lock()
		if h.deltaSeq == ch.Seq && h.deltaEpoch == ch.Epoch {
			if h.deltas == nil || len(h.deltas) >= maxCachedDeltas {
				h.deltas = make(map[uint64]*signedDoc)
			}
			h.deltas[since] = doc
		}
		h.mu.Unlock()
	}
	return doc, nil
}

// sign signs ch as a document: a snapshot when since is 0.
func (h *RevocationsHandler) sign(ch *revocation.Changes, since uint64) (*signedDoc, error) {
	now := h.now()
	iat := now.Truncate(time.Second)
	list := &token.RevocationList{
		Issuer:     h.issuer,
		IssuedAt:   iat,
		FreshUntil: iat.Add(h.freshFor),
		Epoch:      ch.Epoch,
		Seq:        ch.Seq,
		Since:      since,
		Snapshot:   since == 0,
		Retain:     max(h.retain(), 0),
	}
	entries := ch.Entries
	order := idOrder(entries)
	body, err := token.SignRevocationsFunc(h.keys, list, len(order), func(i int) token.Revoked {
		e := &entries[order[i]]
		return token.Revoked{ID: e.ID, Expires: e.Until}
	})
	if err != nil {
		return nil, fmt.Errorf("sign revocation document: %w", err)
	}
	doc := &signedDoc{body: body, epoch: ch.Epoch, seq: ch.Seq, built: now}
	for _, e := range entries {
		if doc.minExpiry.IsZero() || e.Until.Before(doc.minExpiry) {
			doc.minExpiry = e.Until
		}
	}
	return doc, nil
}

// idOrder returns the indexes of entries in the order of their ids, which
// the document requires, without moving or copying the entries (48 MB for
// a million). Ids are random, so a counting sort on their first two bytes
// leaves a dozen or so indexes per bucket to sort: a million entries take
// some 50 ms instead of the 0.5 to 1 s of a comparison sort of the whole.
func idOrder(entries []revocation.Entry) []int32 {
	order := make([]int32, len(entries))
	less := func(a, b int32) int { return bytes.Compare(entries[a].ID[:], entries[b].ID[:]) }
	if len(entries) < 1<<12 {
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, less)
		return order
	}
	pos := make([]int, 1<<16+1)
	for _, e := range entries {
		pos[int(binary.BigEndian.Uint16(e.ID[:2]))+1]++
	}
	for i := 1; i < len(pos); i++ {
		pos[i] += pos[i-1]
	}
	// pos[b] is now where bucket b starts; it advances as indexes land.
	for i, e := range entries {
		b := binary.BigEndian.Uint16(e.ID[:2])
		order[pos[b]] = int32(i)
		pos[b]++
	}
	// pos[b] is now where bucket b ends, and so where b+1 starts.
	start := 0
	for _, end := range pos[:1<<16] {
		slices.SortFunc(order[start:end], less)
		start = end
	}
	return order
}
