package server

// This file is the server's Prometheus metrics: a registry of its own (never
// the global one) with the Go and process collectors, the build, the
// JSON-RPC calls and the token checks (fed by the rpc and session
// observers), the revocation list (its size at scrape time, its group
// commits through revocation.Options.Committed), the signing keys (read at
// scrape time) and the callers refused. GET /metrics on the admin listener
// serves it. The build info, which `sessiond version` prints too, is here.

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// BuildInfo is what the binary knows of its own build (from
// runtime/debug.ReadBuildInfo).
type BuildInfo struct {
	// Version is the main module's version, "devel" for a build from a
	// work tree (go build, go run) rather than go install of a version.
	Version string
	// Revision is the VCS revision the binary was built from, "" when the
	// build recorded none (-buildvcs=false, or no VCS at hand).
	Revision string
	// Modified tells that the work tree had uncommitted changes.
	Modified bool
	// GoVersion is the Go toolchain that built it, e.g. "go1.26.4".
	GoVersion string
}

// ReadBuildInfo returns the running binary's build info.
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "devel", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// The reasons of sessiond_auth_failures_total, for [Server.CountAuthFailure].
const (
	AuthMissing   = "missing"   // no credentials
	AuthInvalid   = "invalid"   // credentials that name no client
	AuthForbidden = "forbidden" // a client calling a method it may not call
)

// otherLabel is the label of anything outside a known set: a method not in
// the table, a reason not listed.
const otherLabel = "other"

// metrics is the server's registry and the collectors its hooks feed.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // method, code
	duration *prometheus.HistogramVec // method
	verify   *prometheus.CounterVec   // result
	writes   prometheus.Counter
	batch    prometheus.Histogram
	auth     *prometheus.CounterVec // reason
}

// newMetrics makes the registry with everything that needs nothing opened:
// the Go and process collectors, the build info, and the counters, which
// start at zero for every known label so that rates exist from the start.
func newMetrics(build BuildInfo) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_rpc_requests_total",
			Help: `JSON-RPC calls answered or run, by method ("other" for one not in the table) and code ("ok" or the JSON-RPC error code).`,
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessiond_rpc_request_duration_seconds",
			Help:    "Time from decoding a JSON-RPC call to encoding its reply, by method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method"}),
		verify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_verify_results_total",
			Help: "Token checks of verify_session_token and introspect_session_token, by result.",
		}, []string{"result"}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessiond_revocation_writes_total",
			Help: "Revocation list writes (close_session and close_all_sessions calls) committed to disk.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sessiond_revocation_commit_batch_size",
			Help:    "Writes carried by one group commit (one fsync) of the revocation list.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024, the most one commit carries
		}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_auth_failures_total",
			Help: "Callers refused, by reason: missing (no credentials), invalid (unknown credentials), forbidden (a method the client may not call).",
		}, []string{"reason"}),
	}
	for _, r := range []string{session.ResultActive, session.ResultExpired, session.ResultRevoked, session.ResultSignature,
		session.ResultUnknownKey, session.ResultMalformed, session.ResultIssuer, session.ResultOther} {
		m.verify.WithLabelValues(r)
	}
	for _, r := range []string{AuthMissing, AuthInvalid, AuthForbidden} {
		m.auth.WithLabelValues(r)
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sessiond_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.revisionLabel(), "goversion": build.GoVersion},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo, m.requests, m.duration, m.verify, m.writes, m.batch, m.auth,
	)
	return m
}

// revisionLabel is the revision as the build_info label shows it: with
// "-modified" for a build from a changed work tree, "unknown" when none
// was recorded.
func (b BuildInfo) revisionLabel() string {
	switch {
	case b.Revision == "":
		return "unknown"
	case b.Modified:
		return b.Revision + "-modified"
	}
	return b.Revision
}

// methods starts the per-method series at zero for the method table's
// names, with code "ok".
func (m *metrics) methods(table map[string]rpc.Method) {
	for name := range table {
		m.requests.WithLabelValues(name, "ok")
		m.duration.WithLabelValues(name)
	}
}

// call counts one JSON-RPC outcome.
func (m *metrics) call(o rpc.Outcome) {
	method := o.Method
	if method == "" {
		method = otherLabel
	}
	code := "ok"
	if o.Code != 0 {
		code = strconv.Itoa(o.Code)
	}
	m.requests.WithLabelValues(method, code).Inc()
	m.duration.WithLabelValues(method).Observe(o.Duration.Seconds())
}

// checked counts a token check's result.
func (m *metrics) checked(e session.Event) {
	if e.Result != "" {
		m.verify.WithLabelValues(e.Result).Inc()
	}
}

// committed counts a group commit of the revocation list that carried n
// writes (revocation.Options.Committed).
func (m *metrics) committed(n int) {
	m.writes.Add(float64(n))
	m.batch.Observe(float64(n))
}

// CountAuthFailure counts a caller refused for reason (AuthMissing,
// AuthInvalid or AuthForbidden; any other is counted as "other") in
// sessiond_auth_failures_total. It is safe for concurrent use, also before
// Open.
func (s *Server) CountAuthFailure(reason string) {
	switch reason {
	case AuthMissing, AuthInvalid, AuthForbidden:
	default:
		reason = otherLabel
	}
	s.metrics.auth.WithLabelValues(reason).Inc()
}

// lengther is a store that can count its entries (revocation.Badger can).
type lengther interface {
	Len(ctx context.Context) (int, error)
}

// storeTimeout bounds the count of the revocation list at a scrape.
const storeTimeout = 5 * time.Second

// openedCollector reports, at each scrape, what the opened server holds:
// the revocation list's entries and the signing keys by state. It reads
// the store and the key ring Open set, and reports nothing of one that
// cannot answer (the scrape goes on without it).
type openedCollector struct {
	store       Store
	ring        *keys.Keyring
	log         *slog.Logger
	revocations *prometheus.Desc
	keys        *prometheus.Desc
	next        *prometheus.Desc
}

func newOpenedCollector(store Store, ring *keys.Keyring, log *slog.Logger) *openedCollector {
	return &openedCollector{
		store: store, ring: ring, log: log,
		revocations: prometheus.NewDesc("sessiond_revocations",
			"Entries (closed sessions) in the revocation list now.", nil, nil),
		keys: prometheus.NewDesc("sessiond_keys",
			"Signing keys by state: next (published, not signing yet), active (signing), retired (verifying only).", []string{"state"}, nil),
		next: prometheus.NewDesc("sessiond_key_next_activation_timestamp_seconds",
			"When the earliest next key starts signing, in Unix seconds; 0 when no key is next.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *openedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.keys
	ch <- c.next
	if _, ok := c.store.(lengther); ok {
		ch <- c.revocations
	}
}

// Collect implements prometheus.Collector.
func (c *openedCollector) Collect(ch chan<- prometheus.Metric) {
	if l, ok := c.store.(lengther); ok {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		n, err := l.Len(ctx)
		cancel()
		if err != nil {
			c.log.Warn("metrics: cannot count the revocation list", "err", err)
		} else {
			ch <- prometheus.MustNewConstMetric(c.revocations, prometheus.GaugeValue, float64(n))
		}
	}
	set, now := c.ring.Set(), time.Now()
	counts := map[keys.State]int{}
	var next time.Time
	for _, k := range set.Keys() {
		lc := set.Lifecycle(k, now, c.ring.Policy())
		counts[lc.State]++
		if lc.State == keys.Next && (next.IsZero() || lc.Activates.Before(next)) {
			next = lc.Activates
		}
	}
	for _, st := range []keys.State{keys.Next, keys.Active, keys.Retired} {
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	var ts float64
	if !next.IsZero() {
		ts = float64(next.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(c.next, prometheus.GaugeValue, ts)
}

// handler serves the registry in the Prometheus text format (or another
// the scraper asks for).
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
