package valkey

// This file opens and closes the store: Options, Open (URL, bounded wait,
// server checks, epoch, retention), Close, and the helpers that run
// scripts.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessiond/sessiond/revocation"
)

// Defaults of [Options].
const (
	// DefaultPrefix names the keys of a store opened without Options.Prefix.
	DefaultPrefix = "sessiond"
	// DefaultDialTimeout bounds the wait for the store at Open.
	DefaultDialTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds a write's wait for its durability
	// (WAITAOF, WAIT).
	DefaultWriteTimeout = 5 * time.Second
	// DefaultTrimInterval is how often expired members leave the indexes.
	DefaultTrimInterval = time.Minute
	// DefaultCacheBytes is the client-side cache of each connection.
	DefaultCacheBytes = 32 << 20
)

// cacheTTL is how long a cached read (of a record, or of the epoch) may
// answer without the server. Correctness does not rest on it: Valkey
// invalidates a cached key whenever any client writes it, and the cache is
// dropped whenever the connection is lost. It bounds the memory that ids
// read once hold, and the harm of an invalidation that was somehow never
// delivered. At 10 s, a token verified continuously costs one round trip
// per 10 s, next to the thousands of verifies it answers from memory.
const cacheTTL = 10 * time.Second

// Options configures [Open]. The zero value is ready to use.
type Options struct {
	// Logger receives the store's messages; nil discards them.
	Logger *slog.Logger

	// Now returns the current time; nil means time.Now. Revoke and CutOff
	// use it to decide whether a record would already be past, Cutoff and
	// Changes whether a record has expired. Valkey expires keys by its own
	// clock.
	Now func() time.Time

	// Retention is how long past a token's expiry its record is kept, as
	// in [revocation.Options]: the store keeps the largest ever given by
	// any node, and Open extends every stored record when a larger one is
	// given. Negative is refused.
	Retention time.Duration

	// Prefix starts every key of the store, in braces: "{sessiond}:seq".
	// The braces make it the keys' hash tag, so every key of a store is in
	// one cluster slot (see the package documentation). Deployments that
	// share a server use different prefixes. Empty means [DefaultPrefix];
	// letters, digits, '.', '_' and '-' only.
	Prefix string

	// DialTimeout bounds how long Open waits for the store to answer;
	// zero means [DefaultDialTimeout].
	DialTimeout time.Duration

	// WriteTimeout bounds how long a write waits for its durability
	// (WAITAOF or WAIT); zero means [DefaultWriteTimeout].
	WriteTimeout time.Duration

	// Replicas is how many replicas must have a write before Revoke and
	// CutOff return nil: fsynced in their AOF (WAITAOF, Valkey 8 and
	// Redis >= 7.2), or received in memory (WAIT, older servers). Zero:
	// the server's own AOF only. Open refuses when its own writes cannot
	// get that many.
	Replicas int

	// TLSConfig is used for rediss:// URLs; nil means the system roots
	// and the URL's host name.
	TLSConfig *tls.Config

	// CacheBytes is the size of the client-side cache of each connection;
	// zero means [DefaultCacheBytes].
	CacheBytes int

	// TrimInterval is how often the store drops expired members from its
	// indexes (writes also drop a few); zero means [DefaultTrimInterval].
	TrimInterval time.Duration
}

// keys are the names of the store's keys, all with the hash tag {prefix}.
type keys struct {
	epoch, seq, retain, extend string
	rseq, rexp, cseq, cexp     string
	record, cut                string // followed by the id / the subject's hash in hex
}

func newKeys(prefix string) keys {
	p := "{" + prefix + "}:"
	return keys{
		epoch: p + "epoch", seq: p + "seq", retain: p + "retain", extend: p + "extend",
		rseq: p + "rseq", rexp: p + "rexp", cseq: p + "cseq", cexp: p + "cexp",
		record: p + "r:", cut: p + "c:",
	}
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Store is a revocation list kept in Valkey or Redis, shared by every
// sessiond node that opens the same URL and prefix. It is safe for
// concurrent use. Open it with [Open]; it owns two goroutines (the periodic
// trim, and the periodic forgetting of remembered answers), which
// [Store.Close] stops.
type Store struct {
	client rueidis.Client
	log    *slog.Logger
	now    func() time.Time
	keys   keys
	url    string // redacted
	// password is the URL's, kept to redact it from the server's error
	// texts. Behind a pointer, so that printing a Store value (%+v, %#v)
	// shows an address, never the password.
	password *secret

	epoch     string // published form, as stored
	retention atomic.Int64
	waitAOF   bool
	replicas  int
	wtimeout  time.Duration

	known *known  // the answers read, in front of the client-side cache
	batch batcher // the revocations waiting for the write on its way

	closed atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open connects to the store at rawURL, waiting at most
// Options.DialTimeout for it to answer, checks that it keeps an AOF,
// makes the list's epoch if the store has none, raises the stored
// retention to Options.Retention if that is larger (extending every record
// first), and starts the trim. A bad URL, an unreachable store and a store
// without an AOF are refused with an error that says what to fix; no
// error ever contains the URL's password.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	t, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.Retention < 0 {
		return nil, fmt.Errorf("open revocation store %s: negative retention %s", t.redacted, opts.Retention)
	}
	if opts.Replicas < 0 {
		return nil, fmt.Errorf("open revocation store %s: negative number of replicas %d", t.redacted, opts.Replicas)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("open revocation store %s: key prefix %q: use 1 to 64 letters, digits, '.', '_' or '-'", t.redacted, opts.Prefix)
	}
	dialTimeout := cmp(opts.DialTimeout, DefaultDialTimeout)
	s := &Store{
		log:      opts.Logger,
		now:      opts.Now,
		keys:     newKeys(opts.Prefix),
		url:      t.redacted,
		password: &secret{t.password},
		replicas: opts.Replicas,
		wtimeout: cmp(opts.WriteTimeout, DefaultWriteTimeout),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// About a hundred bytes an answer, in Go's maps: a quarter of the
	// client-side cache's bytes.
	s.known = newKnown(s.keys, cmp(opts.CacheBytes, DefaultCacheBytes)/400)
	if s.now == nil {
		s.now = time.Now
	}
	s.retention.Store(int64(opts.Retention))

	co := rueidis.ClientOption{
		InitAddress:       t.addrs,
		Username:          t.user,
		Password:          t.password,
		SelectDB:          t.db,
		CacheSizeEachConn: cmp(opts.CacheBytes, DefaultCacheBytes),
		ClientName:        "sessiond",
		// One pipeline per server: the cached reads and the fence after
		// each write (see fence) must share a connection, whose
		// invalidations arrive in order with its replies.
		PipelineMultiplex: -1,
		// No retries inside rueidis: it would retry a read on a dead
		// server until the context ends, and a verify must fail closed at
		// once instead. Callers retry (a close may be repeated).
		DisableRetry: true,
		// A server that stops answering (no FIN, no RST) is given up after
		// 2 s without a reply to the background PING sent every second;
		// the connection's cache goes with it (fail closed).
		ConnWriteTimeout: 2 * time.Second,
		Dialer:           netDialer(dialTimeout),
		// Called by each connection's reader before it hands over a later
		// reply, as rueidis drops its cached keys: see known.
		OnInvalidations: s.known.invalidate,
	}
	switch {
	case t.tls && opts.TLSConfig != nil:
		co.TLSConfig = opts.TLSConfig
	case t.tls:
		// The system roots; the server name is each address's host.
		co.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	case opts.TLSConfig != nil:
		return nil, fmt.Errorf("open revocation store %s: a TLS configuration for a redis:// URL, which does not use TLS: write rediss://", t.redacted)
	}
	if t.cluster {
		co.ShuffleInit = true
	}

	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	for {
		s.client, err = rueidis.NewClient(co)
		if err == nil {
			err = s.client.Do(wctx, s.client.B().Ping().Build()).Error()
			if err == nil {
				break
			}
			s.client.Close()
		}
		if isAuthError(err) {
			return nil, fmt.Errorf("open revocation store %s: the server refused the credentials: %s: give the user and password in the URL (redis://user:password@host:port)", t.redacted, s.redact(err))
		}
		if t.cluster && err != nil && strings.Contains(err.Error(), "cluster support disabled") {
			return nil, fmt.Errorf("open revocation store %s: the server is not a cluster node (cluster support disabled): for one server drop the addr= parameters (redis://host:port)", t.redacted)
		}
		var cverr *tls.CertificateVerificationError
		if errors.As(err, &cverr) {
			return nil, fmt.Errorf("open revocation store %s: the store's TLS certificate is not trusted: %s: have it signed by a CA in the system roots (or give the CA in Options.TLSConfig)", t.redacted, s.redact(err))
		}
		if wctx.Err() != nil || time.Since(start)+200*time.Millisecond >= dialTimeout {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("open revocation store %s: %w", t.redacted, ctx.Err())
			}
			return nil, fmt.Errorf("could not reach the revocation store at %s within %s: %s: start it, or fix the URL (--revocation-store)", t.redacted, dialTimeout, s.redact(err))
		}
		select {
		case <-wctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Not bounded by the dial timeout: raising the retention extends
	// every record, which takes as long as there are records. Each
	// command is bounded on its own (the connection's 2 s, WriteTimeout).
	if err := s.setUp(ctx, opts.Retention); err != nil {
		s.client.Close()
		return nil, err
	}
	tctx, tcancel := context.WithCancel(context.Background())
	s.cancel = tcancel
	s.wg.Add(2)
	go s.every(tctx, cmp(opts.TrimInterval, DefaultTrimInterval), s.trim)
	go s.every(tctx, cacheTTL, func(context.Context) { s.known.forgetAll() })
	s.log.Info("revocation store opened", "url", s.url, "epoch", s.epoch, "retention", s.Retention(), "waitaof", s.waitAOF, "replicas", s.replicas)
	return s, nil
}

// netDialer is the dialer of every connection. rueidis bounds a whole
// connection set-up (connect, TLS, HELLO) by its timeout, 3 s or Open's
// bound if shorter, so Open overruns its bound by less than one set-up,
// and a reconnect to a hung server gives up after 3 s.
func netDialer(timeout time.Duration) net.Dialer {
	return net.Dialer{Timeout: min(timeout, 3*time.Second), KeepAlive: time.Second}
}

func cmp[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func isAuthError(err error) bool {
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") || strings.Contains(msg, "invalid password") || strings.Contains(msg, "invalid username-password")
}

// setUp checks the servers, makes the epoch and raises the retention.
func (s *Store) setUp(ctx context.Context, retention time.Duration) error {
	nodes := s.client.Nodes()
	s.waitAOF = true
	for addr, n := range nodes {
		info, err := n.Do(ctx, n.B().Info().Section("persistence").Build()).ToString()
		if err != nil {
			return fmt.Errorf("open revocation store %s: INFO persistence on %s: %s", s.url, addr, s.redact(err))
		}
		if !strings.Contains(info, "aof_enabled:1") {
			return fmt.Errorf("open revocation store %s: %s has no append-only file (appendonly no): a close it acknowledged would not survive its restart: set appendonly yes (and appendfsync always, see docs/valkey.md)", s.url, addr)
		}
		for _, sc := range allScripts {
			if err := n.Do(ctx, n.B().ScriptLoad().Script(sc.body).Build()).Error(); err != nil {
				return fmt.Errorf("open revocation store %s: SCRIPT LOAD on %s: %s", s.url, addr, s.redact(err))
			}
		}
		arr, err := n.Do(ctx, n.B().CommandInfo().CommandName("WAITAOF").Build()).ToArray()
		if err != nil {
			return fmt.Errorf("open revocation store %s: COMMAND INFO on %s: %s", s.url, addr, s.redact(err))
		}
		if len(arr) == 0 || arr[0].IsNil() {
			s.waitAOF = false
		}
	}
	if !s.waitAOF {
		// Without WAITAOF an acknowledged close is as durable as the
		// server's appendfsync makes it (docs/valkey.md). CONFIG may be
		// refused (managed services); then we cannot tell.
		for addr, n := range nodes {
			v, err := n.Do(ctx, n.B().ConfigGet().Parameter("appendfsync").Build()).AsStrMap()
			if err == nil && v["appendfsync"] != "always" {
				s.log.Warn("revocation store server has no WAITAOF and appendfsync is not always: a close it acknowledged may be lost if the server's machine crashes", "server", addr, "appendfsync", v["appendfsync"])
			}
		}
	}
	fresh := make([]byte, 16)
	_, _ = rand.Read(fresh)
	epoch, err := s.write(ctx, initScript, []string{s.keys.epoch}, []string{base64.RawURLEncoding.EncodeToString(fresh)}).ToString()
	if err != nil {
		return fmt.Errorf("open revocation store %s: make the epoch: %w", s.url, s.wrap(err))
	}
	s.epoch = epoch
	return s.applyRetention(ctx, retention)
}

// Close stops the trim and closes the connections. Every method returns
// an error wrapping [revocation.ErrClosed] afterwards. It is safe to call
// more than once.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	s.client.Close()
	return nil
}

// Retention returns how long past a token's expiry its record is kept: the
// largest retention of any node, as far as this node knows (it learns of a
// larger one at its next write).
func (s *Store) Retention() time.Duration { return time.Duration(s.retention.Load()) }

// Epoch returns the list's epoch, as Changes publishes it.
func (s *Store) Epoch() string { return s.epoch }

// errClosed is what every method returns after Close.
func errClosed(op string) error { return fmt.Errorf("%s: %w", op, revocation.ErrClosed) }

// secret holds a password; its String and GoString never show it.
type secret struct{ s string }

func (secret) String() string   { return "xxxxx" }
func (secret) GoString() string { return "xxxxx" }

// String names the store by its URL, without the password.
func (s *Store) String() string { return "valkey.Store(" + s.url + ")" }

// LogValue is the store as a log attribute: its URL, without the password.
func (s *Store) LogValue() slog.Value { return slog.StringValue(s.url) }

// redact removes the password from an error's text.
func (s *Store) redact(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if s.password != nil && s.password.s != "" {
		msg = strings.ReplaceAll(msg, s.password.s, "xxxxx")
	}
	return msg
}

// evalCmd returns EVALSHA of sc, or with body EVAL (after a NOSCRIPT: a
// restarted server forgot the scripts Open loaded).
func (s *Store) evalCmd(sc script, body bool, keys, args []string) rueidis.Completed {
	b := s.client.B()
	if body {
		return b.Eval().Script(sc.body).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
	}
	return b.Evalsha().Sha1(sc.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// withWait is cmd followed by the wait for its durability: WAITAOF for
// the local AOF and Options.Replicas replicas, WAIT on servers without
// WAITAOF when replicas are asked for, else nothing.
func (s *Store) withWait(cmd rueidis.Completed) []rueidis.Completed {
	b, ms := s.client.B(), int64(s.wtimeout/time.Millisecond)
	switch {
	case s.waitAOF:
		return []rueidis.Completed{cmd, b.Waitaof().Numlocal(1).Numreplicas(int64(s.replicas)).Timeout(ms).Build()}
	case s.replicas > 0:
		return []rueidis.Completed{cmd, b.Wait().Numreplicas(int64(s.replicas)).Timeout(ms).Build()}
	}
	return []rueidis.Completed{cmd}
}

func isNoScript(err error) bool {
	var re *rueidis.RedisError
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOSCRIPT")
}

// run runs a script without waiting for durability: the reads, and the
// trim (a trim that is lost loses nothing).
func (s *Store) run(ctx context.Context, sc script, keys, args []string) rueidis.RedisResult {
	res := s.client.Do(ctx, s.evalCmd(sc, false, keys, args))
	if isNoScript(res.Error()) {
		return s.client.Do(ctx, s.evalCmd(sc, true, keys, args))
	}
	return res
}

// write runs a script that writes, then waits for its durability on the
// same connection (WAITAOF or WAIT covers the writes of the connection
// they run on), and returns the script's result, or an error if the
// write is not known to be durable. The two go as one DoMulti: rueidis
// sends a DoMulti that holds a blocking command (WAITAOF and WAIT are)
// whole down one connection of its pool of blocking connections
// (mux.blockingMulti; on a cluster, to the slot's master), and puts the
// connection back as it is, without the reset a DedicatedClient's release
// costs (UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE and DISCARD: one more
// round trip per close).
func (s *Store) write(ctx context.Context, sc script, keys, args []string) rueidis.RedisResult {
	// Room for two WAITAOFs: after a NOSCRIPT (a restarted server forgot
	// the scripts Open loaded) the script is sent again with its own.
	ctx, cancel := context.WithTimeout(ctx, 2*s.wtimeout+2*time.Second)
	defer cancel()
	out := s.client.DoMulti(ctx, s.withWait(s.evalCmd(sc, false, keys, args))...)
	if isNoScript(out[0].Error()) {
		out = s.client.DoMulti(ctx, s.withWait(s.evalCmd(sc, true, keys, args))...)
	}
	res := out[0]
	if err := res.Error(); err != nil {
		return res
	}
	if len(out) > 1 {
		if err := s.checkWait(out[1]); err != nil {
			return rueidis.NewErrorResult(err)
		}
	}
	if err := s.fence(ctx); err != nil {
		return rueidis.NewErrorResult(err)
	}
	return res
}

// fence makes this node read its own writes. The write went down a
// connection of the blocking pool; the cached reads use the store's pipeline
// connection, where the server's invalidation of the written key arrives
// as a push that rueidis may not have read yet when the write's reply
// arrives on the other connection. A command sent on the pipeline after
// the write's reply is answered after that push, which rueidis handles
// (dropping the cached key) before it hands over the reply. If the fence
// fails the write stays done, but the caller gets an error: a read on this
// node might not see it yet.
func (s *Store) fence(ctx context.Context) error {
	if err := s.client.Do(ctx, s.client.B().Exists().Key(s.keys.epoch).Build()).Error(); err != nil {
		return fmt.Errorf("after the write, wait for this node's cache to learn of it: %w", err)
	}
	return nil
}

// errNotDurable marks a write the server did, without the durability asked.
var errNotDurable = ErrNotDurable

// checkWait checks the reply of WAITAOF or WAIT.
func (s *Store) checkWait(r rueidis.RedisResult) error {
	if s.waitAOF {
		got, err := r.AsIntSlice()
		if err != nil {
			return fmt.Errorf("WAITAOF: %w", err)
		}
		if len(got) != 2 {
			return fmt.Errorf("WAITAOF answered %v, want two numbers", got)
		}
		if got[0] < 1 {
			return fmt.Errorf("%w: WAITAOF 1 %d answered %v within %s: the server did not fsync its AOF; appendfsync no never does: set appendfsync always (or everysec), and check the server's disk", errNotDurable, s.replicas, got, s.wtimeout)
		}
		if got[1] < int64(s.replicas) {
			return fmt.Errorf("%w: WAITAOF 1 %d answered %v within %s: fewer replicas than --revocation-store-replicas fsynced it: check that the replicas run, with appendonly yes", errNotDurable, s.replicas, got, s.wtimeout)
		}
		return nil
	}
	got, err := r.AsInt64()
	if err != nil {
		return fmt.Errorf("WAIT: %w", err)
	}
	if got < int64(s.replicas) {
		return fmt.Errorf("%w: WAIT %d answered %d replicas within %s: check the replicas", errNotDurable, s.replicas, got, s.wtimeout)
	}
	return nil
}

// applyRetention finishes an unfinished extension, then raises the stored
// retention to r if r is larger, extending every record by the difference.
// Afterwards s.retention is the stored one.
func (s *Store) applyRetention(ctx context.Context, r time.Duration) error {
	for range 3 {
		res, err := s.write(ctx, retainScript,
			[]string{s.keys.retain, s.keys.extend, s.keys.seq, s.keys.epoch},
			[]string{s.epoch, strconv.FormatInt(int64(r), 10)}).ToArray()
		if err != nil {
			return fmt.Errorf("open revocation store %s: raise the retention to %s: %w", s.url, r, s.wrap(err))
		}
		if len(res) != 2 {
			return fmt.Errorf("open revocation store %s: raise the retention: unexpected answer", s.url)
		}
		status, _ := res[0].ToString()
		val, _ := res[1].ToString()
		switch status {
		case "KEPT":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return fmt.Errorf("open revocation store %s: stored retention %q: %w", s.url, val, err)
			}
			s.retention.Store(n)
			return nil
		case "BEGUN":
			if err := s.extend(ctx, val); err != nil {
				return err
			}
			s.retention.Store(int64(r))
			s.log.Info("revocation store retention raised", "to", r)
			return nil
		case "PENDING":
			// An open that raised it before did not finish: finish it,
			// then compare again.
			if err := s.extend(ctx, val); err != nil {
				return err
			}
		default:
			return fmt.Errorf("open revocation store %s: raise the retention: unexpected answer %q", s.url, status)
		}
	}
	return fmt.Errorf("open revocation store %s: the retention kept changing while raising it: open again", s.url)
}

// extend runs the pending extension ext ("seq delta") to its end.
func (s *Store) extend(ctx context.Context, ext string) error {
	upto, _, _ := strings.Cut(ext, " ")
	start, total := time.Now(), 0
	for _, kind := range []struct {
		name, seqk, expk, rec string
	}{
		{"r", s.keys.rseq, s.keys.rexp, s.keys.record},
		{"c", s.keys.cseq, s.keys.cexp, s.keys.cut},
	} {
		for {
			members, err := s.client.Do(ctx, s.client.B().Zrangebyscore().Key(kind.seqk).Min("-inf").Max(upto).Limit(0, 256).Build()).AsStrSlice()
			if err != nil {
				return fmt.Errorf("open revocation store %s: extend records: %s", s.url, s.redact(err))
			}
			if len(members) == 0 {
				break
			}
			keys := []string{s.keys.seq, kind.seqk, kind.expk, s.keys.epoch, s.keys.extend}
			args := []string{s.epoch, ext, kind.name}
			for _, m := range members {
				name, _, _ := strings.Cut(m, " ")
				keys = append(keys, kind.rec+name)
				args = append(args, m)
			}
			if err := s.write(ctx, extendScript, keys, args).Error(); err != nil {
				return fmt.Errorf("open revocation store %s: extend records: %w", s.url, s.wrap(err))
			}
			total += len(members)
		}
	}
	done, err := s.write(ctx, finishScript, []string{s.keys.extend, s.keys.rseq, s.keys.cseq}, []string{ext}).AsInt64()
	if err != nil {
		return fmt.Errorf("open revocation store %s: finish the extension: %w", s.url, s.wrap(err))
	}
	if done != 1 {
		return fmt.Errorf("open revocation store %s: records left after extending: open again", s.url)
	}
	s.log.Info("revocation store records extended", "extension", ext, "records", total, "took", time.Since(start))
	return nil
}

// every calls f every interval until ctx ends: the periodic trim, and
// forgetting every remembered answer once per cacheTTL (the bound
// rueidis's cache puts on an answer whose invalidation never came).
func (s *Store) every(ctx context.Context, interval time.Duration, f func(ctx context.Context)) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// trim is the periodic Trim.
func (s *Store) trim(ctx context.Context) {
	if err := s.Trim(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("revocation store trim failed", "err", s.redact(err))
	}
}

// Trim drops the members of expired records from the indexes the feed
// answers from, by the server's clock. Changes skips them anyway; this
// keeps the indexes from growing. The store runs it every
// Options.TrimInterval; it is exported for tests and tools.
func (s *Store) Trim(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed("trim revocations")
	}
	keys := []string{s.keys.rseq, s.keys.rexp, s.keys.cseq, s.keys.cexp}
	for {
		// No durability wait: a trim loses nothing if it is lost.
		n, err := s.run(ctx, trimScript, keys, []string{"1000"}).AsInt64()
		if err != nil {
			return fmt.Errorf("trim revocations: %s", s.redact(err))
		}
		if n < 1000 {
			return nil
		}
	}
}
