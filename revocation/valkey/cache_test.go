package valkey_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
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

// TestRememberedAnswersFollowTheServer: answers a node remembers (an
// absent record, a revoked one, no cutoff) follow any client's change of
// their keys on the server, written behind the store's back, within
// 100 ms; and a change of the epoch makes even a remembered id an error
// (ErrReplaced), never its old answer.
func TestRememberedAnswersFollowTheServer(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		s := open(t, srv.URL(), valkey.Options{})
		id, other := uuid.New(), uuid.New()
		key := "{" + valkey.DefaultPrefix + "}:r:" + id.String()
		exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
		wantRevoked(t, s, id, false)
		wantRevoked(t, s, other, false)
		srv.MustDo("SET", key, exp+" 1")
		waitSeen(t, 100*time.Millisecond, "a record written by another client", func() (bool, error) { return s.IsRevoked(ctx, id) })
		srv.MustDo("DEL", key)
		waitSeen(t, 100*time.Millisecond, "a record deleted by another client", func() (bool, error) {
			revoked, err := s.IsRevoked(ctx, id)
			return !revoked, err
		})

		const subject = "alice@example.com"
		if _, ok, err := s.Cutoff(ctx, subject); err != nil || ok {
			t.Fatalf("Cutoff before = %v, %v; want none", ok, err)
		}
		h := sha256.Sum256([]byte(subject))
		at := time.Now().Unix()
		srv.MustDo("SET", "{"+valkey.DefaultPrefix+"}:c:"+hex.EncodeToString(h[:]), fmt.Sprintf("%d %s 1", at, exp))
		waitSeen(t, 100*time.Millisecond, "a cutoff written by another client", func() (bool, error) {
			got, ok, err := s.Cutoff(ctx, subject)
			return ok && got.Unix() == at, err
		})

		wantRevoked(t, s, other, false) // remembered
		srv.MustDo("SET", "{"+valkey.DefaultPrefix+"}:epoch", "another-list")
		deadline := time.Now().Add(100 * time.Millisecond)
		for {
			revoked, err := s.IsRevoked(ctx, other)
			if errors.Is(err, valkey.ErrReplaced) && revoked {
				break
			}
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("IsRevoked of a remembered id after the epoch changed = %v, %v; want true, ErrReplaced within 100ms", revoked, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
