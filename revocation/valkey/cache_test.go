package valkey_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/revocation/valkey"
)

var getCalls = regexp.MustCompile(`cmdstat_get:calls=(\d+)`)

// gets is how many GETs the server has run.
func gets(t *testing.T, srv *valkeytest.Server) string {
	t.Helper()
	m := getCalls.FindStringSubmatch(srv.MustDo("INFO", "commandstats"))
	if m == nil {
		return "0"
	}
	return m[1]
}

// TestCachedReadsNoRoundTrip: once read, a record (revoked or absent), a
// cutoff and the epoch answer from the client-side cache: the server runs
// no GET for them however often they are read.
func TestCachedReadsNoRoundTrip(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		s := open(t, srv.URL(), valkey.Options{})
		revoked, absent := uuid.New(), uuid.New()
		revoke(t, s, revoked, time.Now().Add(time.Hour))
		wantRevoked(t, s, revoked, true)
		wantRevoked(t, s, absent, false)
		if _, _, err := s.Cutoff(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		before := gets(t, srv)
		for range 1000 {
			wantRevoked(t, s, revoked, true)
			wantRevoked(t, s, absent, false)
			if _, ok, err := s.Cutoff(ctx, "alice"); err != nil || ok {
				t.Fatalf("Cutoff = %v, %v", ok, err)
			}
		}
		if after := gets(t, srv); after != before {
			t.Fatalf("the server ran GET %s times before and %s after 3000 cached reads, want no new GET", before, after)
		}
	})
}
