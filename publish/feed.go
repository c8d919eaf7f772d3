package publish

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/issue"
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
	// ClientEvery is how often one client (a remote IP address; for IPv6,
	// its /64) may be sent a large document (over 64 KiB: a snapshot, or a
	// delta, of more than some 1,770 ids), once it has had ClientBurst of
	// them; sooner, it gets 429 with Retry-After. Honest verifiers take one
	// snapshot and then ask for deltas. 0 means 5 seconds; negative, no
	// limit.
	ClientEvery time.Duration
	// ClientBurst is how many large documents a client may fetch at once;
	// 0 means 4.
	ClientBurst int
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
// and sign, so every request first asks the feed for its head (epoch, seq
// and sizes; a binary search, no copy) and is answered from the shared
// snapshot whenever that will do: a large one (over 64 KiB) is built at
// most every Rebuild, by one request while the others wait for it, and
// never under a lock that revocation or verification needs; a small one is
// always current. Only a client whose own list is newer than the shared
// snapshot by more than MaxDelta entries (which takes that many writes)
// makes a large one be built sooner. Deltas are built per request (a
// binary search and their own entries) and shared by requests for the same
// SEQ while the list does not change, for up to Rebuild, within 8 MiB.
//
// What one client can make the server send is bounded too: past
// ClientBurst large documents, one per ClientEvery, and 429 with
// Retry-After for the rest.
type RevocationsHandler struct {
	feed     revocation.Feed
	keys     issue.SigningKeys
	issuer   string
	freshFor time.Duration
	rebuild  time.Duration
	reuse    time.Duration // how long an unchanged snapshot is served again
	maxDelta int
	log      *slog.Logger
	now      func() time.Time
	retain   func() time.Duration

	clients *clientLimiter // nil: no limit

	buildMu sync.Mutex // one snapshot build at a time

	mu         sync.Mutex // guards the cache below
	snapshot   *signedDoc
	deltas     map[uint64]*signedDoc // by since, all at deltaSeq of deltaEpoch
	deltaBytes int                   // of the deltas' bodies
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
	maxCachedDeltas     = 256
	maxCachedDeltaBytes = 8 << 20
	// largeDoc is the size from which a document is large: built at most
	// every Rebuild when it is a snapshot, and rationed per client.
	largeDoc = 64 << 10
	// bytesPerID is what an id takes in a document, to tell a large one
	// from its number of entries before it is built.
	bytesPerID = 37
	// bytesPerCutoff is what a subject cutoff takes in a document: 42
	// bytes (hash, cutoff, expiry) base64 twice.
	bytesPerCutoff = 75
)

// NewRevocationsHandler returns a handler that publishes the list of feed,
// signed by the active key of keys.
func NewRevocationsHandler(feed revocation.Feed, keys issue.SigningKeys, opts RevocationsOptions) *RevocationsHandler {
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
	if opts.ClientEvery >= 0 {
		every, burst := opts.ClientEvery, opts.ClientBurst
		if every == 0 {
			every = 5 * time.Second
		}
		if burst <= 0 {
			burst = 4
		}
		h.clients = newClientLimiter(every, burst)
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
	doc, retry, err := h.document(r.Context(), since, q.Get("epoch"), r.RemoteAddr)
	if retry > 0 {
		secs := int((retry + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		http.Error(w, fmt.Sprintf("too many large revocation documents for this address: keep your copy current with ?since=SEQ (deltas), or retry after %d s", secs),
			http.StatusTooManyRequests)
		return
	}
	if err != nil {
		h.log.Error("revocation feed", "since", since, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/"+jose.TypeRevocations)
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
// (empty: none) for the client at remote, or how long that client must
// wait for it. It asks the feed for its head first, so that a request the
// shared snapshot answers copies nothing.
func (h *RevocationsHandler) document(ctx context.Context, since uint64, epoch, remote string) (*signedDoc, time.Duration, error) {
	head, err := h.feed.Head(ctx, since)
	if err != nil {
		return nil, 0, err
	}
	otherList := epoch != "" && epoch != head.Epoch
	snapshot := since == 0 || head.Snapshot || otherList || head.Entries > h.maxDelta
	size := head.Entries * bytesPerID
	if snapshot {
		size = head.Total*bytesPerID + head.Cutoffs*bytesPerCutoff
	}
	if size > largeDoc && h.clients != nil {
		if wait := h.clients.take(clientKey(remote), h.now()); wait > 0 {
			return nil, wait, nil
		}
	}
	if !snapshot {
		doc, err := h.deltaDoc(ctx, head, since)
		return doc, 0, err
	}
	// A snapshot for a client that holds the list at since must not take
	// it back to an older state, so a shared one must be at least that
	// recent; unless the client holds another list, or one ahead of the
	// store (restored from a backup without `sessiond revocations
	// new-epoch`): it gets the current snapshot, which a verifier refuses
	// as older than its copy (token.ErrOutdated) and so fails closed until
	// the store gets a new epoch.
	atLeast := since
	if otherList || since > head.Seq {
		atLeast = 0
	}
	doc, err := h.snapshotDoc(ctx, head, atLeast)
	return doc, 0, err
}

// cached returns the cached snapshot if it may answer a request that saw
// head and needs seq atLeast or later: it is large and younger than
// Rebuild (shared, whatever changed meanwhile), or the list has not changed
// since, none of its entries has expired, and it is younger than reuse.
//
// A small snapshot is cheap to build, so it is always current: a verifier
// that holds the list at seq 0 asks for snapshots until the first write, and
// must see that write at once.
func (h *RevocationsHandler) cached(head revocation.Head, atLeast uint64) *signedDoc {
	h.mu.Lock()
	s := h.snapshot
	h.mu.Unlock()
	if s == nil || s.epoch != head.Epoch || s.seq < atLeast {
		return nil
	}
	now := h.now()
	age := now.Sub(s.built)
	switch {
	case age < h.rebuild && len(s.body) > largeDoc:
		return s
	case age < h.reuse && s.seq == head.Seq && (s.minExpiry.IsZero() || now.Before(s.minExpiry)):
		return s
	}
	return nil
}

// snapshotDoc returns the cached snapshot if it answers head and atLeast,
// or builds one. One request builds while the others wait for it: a
// snapshot of a million ids takes about a second.
func (h *RevocationsHandler) snapshotDoc(ctx context.Context, head revocation.Head, atLeast uint64) (*signedDoc, error) {
	if doc := h.cached(head, atLeast); doc != nil {
		return doc, nil
	}
	// The build continues for the requests that wait for it even if this
	// one's client goes away.
	ctx = context.WithoutCancel(ctx)
	h.buildMu.Lock()
	defer h.buildMu.Unlock()
	if doc := h.cached(head, atLeast); doc != nil {
		return doc, nil // built while this request waited
	}
	// Let the old document go before the new one is made: at a million
	// ids each is 37 MB.
	h.mu.Lock()
	h.snapshot = nil
	h.mu.Unlock()
	start := time.Now()
	doc, err := h.signSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	h.log.Debug("revocation snapshot built", "seq", doc.seq, "bytes", len(doc.body), "took", time.Since(start))
	h.mu.Lock()
	h.snapshot = doc
	h.mu.Unlock()
	return doc, nil
}

// deltaDoc returns the delta since since, from the cache if it was built
// in the last Rebuild at head's seq.
func (h *RevocationsHandler) deltaDoc(ctx context.Context, head revocation.Head, since uint64) (*signedDoc, error) {
	h.mu.Lock()
	cached := h.deltas[since]
	if h.deltaSeq != head.Seq || h.deltaEpoch != head.Epoch {
		cached = nil
	}
	h.mu.Unlock()
	if cached != nil && h.now().Sub(cached.built) < h.rebuild {
		return cached, nil
	}
	ch, err := h.feed.Changes(ctx, since)
	if err != nil {
		return nil, err
	}
	if ch.Snapshot {
		// The list changed between the head and the changes (a burst of
		// writes): answer from the shared snapshot after all.
		head = revocation.Head{Epoch: ch.Epoch, Seq: ch.Seq, Snapshot: true}
		return h.snapshotDoc(ctx, head, since)
	}
	doc, err := h.sign(&ch, since)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.deltaSeq != ch.Seq || h.deltaEpoch != ch.Epoch {
		if ch.Seq < h.deltaSeq && ch.Epoch == h.deltaEpoch {
			return doc, nil // the cache has moved on already
		}
		h.deltas, h.deltaBytes, h.deltaSeq, h.deltaEpoch = nil, 0, ch.Seq, ch.Epoch
	}
	if h.deltas == nil || len(h.deltas) >= maxCachedDeltas || h.deltaBytes+len(doc.body) > maxCachedDeltaBytes {
		h.deltas, h.deltaBytes = make(map[uint64]*signedDoc), 0
	}
	if len(doc.body) <= maxCachedDeltaBytes {
		if old := h.deltas[since]; old != nil {
			h.deltaBytes -= len(old.body)
		}
		h.deltas[since] = doc
		h.deltaBytes += len(doc.body)
	}
	return doc, nil
}

// lender is a feed that lends its whole list for a snapshot instead of
// copying it ([revocation.Badger.Snapshot]): a million entries cost 4 MB
// of heap instead of 48.
type lender interface {
	Snapshot(ctx context.Context) (revocation.Snapshot, error)
}

// signSnapshot signs the whole list, lent by the feed if it can.
func (h *RevocationsHandler) signSnapshot(ctx context.Context) (*signedDoc, error) {
	l, ok := h.feed.(lender)
	if !ok {
		ch, err := h.feed.Changes(ctx, 0)
		if err != nil {
			return nil, err
		}
		return h.sign(&ch, 0)
	}
	snap, err := l.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return h.signList(snap.Epoch, snap.Seq, 0, snap.Cutoffs, snap.Len(), snap.ID, snap.Entry)
}

// sign signs ch as a document: a snapshot when since is 0.
func (h *RevocationsHandler) sign(ch *revocation.Changes, since uint64) (*signedDoc, error) {
	entries := ch.Entries
	return h.signList(ch.Epoch, ch.Seq, since, ch.Cutoffs, len(entries),
		func(i int) uuid.UUID { return entries[i].ID },
		func(i int) revocation.Entry { return entries[i] })
}

// signList signs a document of the n entries that id and entry give (in
// any order), and of cutoffs: a snapshot when since is 0.
func (h *RevocationsHandler) signList(epoch string, seq, since uint64, cutoffs []revocation.Cutoff, n int,
	id func(i int) uuid.UUID, entry func(i int) revocation.Entry) (*signedDoc, error) {
	now := h.now()
	iat := now.Truncate(time.Second)
	list := &token.RevocationList{
		Issuer:     h.issuer,
		IssuedAt:   iat,
		FreshUntil: iat.Add(h.freshFor),
		Epoch:      epoch,
		Seq:        seq,
		Since:      since,
		Snapshot:   since == 0,
		Retain:     max(h.retain(), 0),
		Cutoffs:    make([]token.Cutoff, len(cutoffs)),
	}
	// In the order of their hashes, as the feed gives them and the
	// document requires; by hash only, never a subject.
	for i, c := range cutoffs {
		list.Cutoffs[i] = token.Cutoff{Subject: c.Subject, At: c.At, Expires: c.Until}
	}
	order := idOrder(n, id)
	body, err := issue.SignRevocationsFunc(h.keys, list, len(order), func(i int) token.Revoked {
		e := entry(int(order[i]))
		return token.Revoked{ID: e.ID, Expires: e.Until}
	})
	if err != nil {
		return nil, fmt.Errorf("sign revocation document: %w", err)
	}
	doc := &signedDoc{body: body, epoch: epoch, seq: seq, built: now}
	for i := range n {
		if until := entry(i).Until; doc.minExpiry.IsZero() || until.Before(doc.minExpiry) {
			doc.minExpiry = until
		}
	}
	for _, c := range cutoffs {
		if doc.minExpiry.IsZero() || c.Until.Before(doc.minExpiry) {
			doc.minExpiry = c.Until
		}
	}
	return doc, nil
}

// idOrder returns the indexes 0 to n-1 in the order of their ids (id(i)),
// which the document requires, without moving or copying the entries. Ids
// are random, so a counting sort on their first two bytes leaves a dozen
// or so indexes per bucket to sort: a million entries take some 50 ms
// instead of the 0.5 to 1 s of a comparison sort of the whole.
func idOrder(n int, id func(i int) uuid.UUID) []int32 {
	order := make([]int32, n)
	less := func(a, b int32) int {
		x, y := id(int(a)), id(int(b))
		return bytes.Compare(x[:], y[:])
	}
	if n < 1<<12 {
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, less)
		return order
	}
	bucket := func(i int) int { x := id(i); return int(binary.BigEndian.Uint16(x[:2])) }
	pos := make([]int, 1<<16+1)
	for i := range n {
		pos[bucket(i)+1]++
	}
	for i := 1; i < len(pos); i++ {
		pos[i] += pos[i-1]
	}
	// pos[b] is now where bucket b starts; it advances as indexes land.
	for i := range n {
		b := bucket(i)
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

// clientLimiter rations large documents per client: a token bucket per
// client of burst tokens, one more every every. It remembers at most
// maxLimitedClients clients; beyond that, those whose bucket is full are
// forgotten, and if none is, a new client waits like one whose bucket is
// empty.
type clientLimiter struct {
	every time.Duration
	burst float64

	mu      sync.Mutex
	clients map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxLimitedClients = 4096

func newClientLimiter(every time.Duration, burst int) *clientLimiter {
	return &clientLimiter{every: every, burst: float64(burst), clients: make(map[string]*bucket)}
}

// take takes a token for client at now, and returns 0, or how long the
// client must wait for one.
func (l *clientLimiter) take(client string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[client]
	if b == nil {
		if len(l.clients) >= maxLimitedClients {
			for k, c := range l.clients {
				if l.refill(c, now) >= l.burst {
					delete(l.clients, k)
				}
			}
			if len(l.clients) >= maxLimitedClients {
				return l.every
			}
		}
		b = &bucket{tokens: l.burst, at: now}
		l.clients[client] = b
	}
	if l.refill(b, now) >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.every))
}

// refill adds the tokens earned since b.at and returns the count.
func (l *clientLimiter) refill(b *bucket, now time.Time) float64 {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+float64(elapsed)/float64(l.every))
		b.at = now
	}
	return b.tokens
}

// clientKey is the key of the client at remote (an http.Request's
// RemoteAddr): its IP address, or for IPv6 its /64, which one host
// usually has whole.
func clientKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}
