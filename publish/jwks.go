package publish

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/token"
)

// JWKSHandler serves the published verification keys as a JWK Set (GET
// /.well-known/jwks.json) with Cache-Control max-age and an ETag, answering
// If-None-Match with 304. It never holds a private key: it only sees what
// keys returns.
type JWKSHandler struct {
	keys   func() []token.PublicKey
	maxAge time.Duration
	log    *slog.Logger

	mu   sync.Mutex
	kids []string // of the cached document
	body []byte
	etag string
}

// NewJWKSHandler returns a handler that publishes what keys returns (it is
// called on every request and should be cheap) and lets clients cache it for
// maxAge. A nil logger discards.
func NewJWKSHandler(keys func() []token.PublicKey, maxAge time.Duration, log *slog.Logger) *JWKSHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &JWKSHandler{keys: keys, maxAge: maxAge, log: log}
}

func (h *JWKSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, etag, err := h.document()
	if err != nil {
		h.log.Error("encode JWKS", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(h.maxAge/time.Second)))
	hdr.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", "application/jwk-set+json")
	w.Write(body)
}

// document returns the JWK Set and its ETag, encoding it again only when
// the set of keys changed.
func (h *JWKSHandler) document() ([]byte, string, error) {
	keys := h.keys()
	kids := make([]string, len(keys))
	for i, k := range keys {
		kids[i] = k.ID
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.body != nil && slices.Equal(kids, h.kids) {
		return h.body, h.etag, nil
	}
	body, err := issue.MarshalJWKS(keys)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(body)
	h.kids, h.body = kids, body
	h.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	return h.body, h.etag, nil
}

// etagMatches implements the weak comparison of If-None-Match (RFC 9110
// §13.1.2) against one strong ETag.
func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == etag {
			return true
		}
	}
	return false
}
