//go:build linux

package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestAuthHeader checks that the load client sends the secret of a source
// made withAuth, on every request, and none without, and that the server
// still reads each request whole (its body as sent).
func TestAuthHeader(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{} // Authorization header → requests
	var badBody int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		mu.Lock()
		got[r.Header.Get("Authorization")]++
		if err != nil || string(body) != string(verifyBody(nil, "tok")) {
			badBody++
		}
		mu.Unlock()
		w.Write(expectActive)
	}))
	defer ts.Close()
	addr := ts.Listener.Addr().String()
	// 20 requests on 2 connections, then the run ends (no timing).
	srcs := func() []source {
		return newListSources(20, 2, listed(slices.Repeat([]string{"tok"}, 20), verifyBody), expectActive)
	}

	for _, tc := range []struct {
		name, secret, want string
	}{
		{"with a secret", "s3cret-XYZ_abc", "Bearer s3cret-XYZ_abc"},
		{"without", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clear(got)
			badBody = 0
			r := runLoad(addr, withAuth(tc.secret, srcs()), 0, time.Minute, 0, nil)
			mu.Lock()
			defer mu.Unlock()
			if r.Errors != 0 || r.Requests != 20 {
				t.Fatalf("runLoad: %d requests, %d errors (the first %v); want 20, no errors", r.Requests, r.Errors, r.firstErr)
			}
			if len(got) != 1 || got[tc.want] != 20 || badBody != 0 {
				t.Errorf("Authorization headers seen = %v, bad bodies %d; want %q on all 20, none bad", got, badBody, tc.want)
			}
		})
	}
}

// TestFloodSources checks flood_fair's accounting of the flooder's
// replies: {"active":false} and -32005 are correct and counted apart,
// {"active":true} and any other reply are errors; and that the sources
// stop once their context ends.
func TestFloodSources(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srcs, inactive, refused := floodSources(ctx, []floodToken{{tok: "a.b.c", forged: true}, {tok: "d.e.f", forged: true}}, 3)
	if len(srcs) != 3 {
		t.Fatalf("floodSources(…, 3) = %d sources, want 3", len(srcs))
	}
	s := srcs[0]
	for _, tc := range []struct {
		reply   string
		wantErr error // nil: no error; errOther: some error
	}{
		{`{"jsonrpc":"2.0","result":{"active":false},"id":1}`, nil},
		{`{"id":1,"result":{"active":false},"jsonrpc":"2.0"}`, nil},
		{`{"jsonrpc":"2.0","error":{"code":-32005,"message":"too many invalid tokens, retry later"},"id":1}`, nil},
		{`{"jsonrpc":"2.0","result":{"active":true},"id":1}`, errForgedActive},
		{`{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"},"id":1}`, errOther},
		{`{"jsonrpc":"2.0","error":{"code":-32001,"message":"unauthorized"},"id":null}`, errOther},
		{`not json`, errOther},
	} {
		err := s.check([]byte(tc.reply))
		if tc.wantErr == nil && err != nil || tc.wantErr == errForgedActive && !errors.Is(err, errForgedActive) || tc.wantErr == errOther && (err == nil || errors.Is(err, errForgedActive)) {
			t.Errorf("check(%s) = %v, want %v", tc.reply, err, tc.wantErr)
		}
	}
	if inactive.Load() != 2 || refused.Load() != 1 {
		t.Errorf("inactive, refused = %d, %d; want 2, 1", inactive.Load(), refused.Load())
	}
	if body, ok := s.next(nil); !ok || string(body) != string(verifyBody(nil, "d.e.f")) && string(body) != string(verifyBody(nil, "a.b.c")) {
		t.Errorf("next() = %s, %t; want a verify of a pool token, true", body, ok)
	}
	cancel()
	if _, ok := s.next(nil); ok {
		t.Error("next() after the context ended = _, true; want false")
	}
}

var errOther = errors.New("any error but errForgedActive")

// TestSlotSources checks the accounting of verify_hot_sub and
// verify_hot_valkey: a request sent in an odd slot verifies a token of the
// second pool at the second address, one sent in an even slot one of the
// first at the first ("": runLoad's connection), an active reply counts in
// its slot, and nothing sent before the first slot counts.
func TestSlotSources(t *testing.T) {
	pools := [2][]string{{"a.a.a", "b.b.b"}, {"x.x.x", "y.y.y"}}
	active := []byte(`{"jsonrpc":"2.0","result":{"active":true},"id":1}`)
	for _, tc := range []struct {
		since time.Duration // how long ago the first slot began
		pool  int
		slot  int // -1: not counted
	}{
		{-time.Hour, 0, -1},
		{slotLength / 2, 0, 0},
		{slotLength * 3 / 2, 1, 1},
		{slotLength * 5 / 2, 0, 2},
	} {
		srcs, counts := newSlotSources([2][]source{newCycleSources(pools[0], 2), newCycleSources(pools[1], 2)}, [2]string{"", "127.0.0.1:2"}, time.Now().Add(-tc.since), 0)
		body, ok := srcs[1].next(nil)
		if !ok || !slices.ContainsFunc(pools[tc.pool], func(tok string) bool { return string(body) == string(verifyBody(nil, tok)) }) {
			t.Errorf("%s into the slots: next() = %s, %t; want a verify of a token of pool %d", tc.since, body, ok, tc.pool)
		}
		own := &client{addr: "127.0.0.1:1"}
		if got, want := srcs[1].(router).via(own).addr, []string{own.addr, "127.0.0.1:2"}[tc.pool]; got != want {
			t.Errorf("%s into the slots: via() is a connection to %s, want %s", tc.since, got, want)
		}
		if err := srcs[1].check(active); err != nil {
			t.Errorf("check(active) = %v", err)
		}
		if err := srcs[1].check([]byte(`{"jsonrpc":"2.0","result":{"active":false},"id":1}`)); err == nil {
			t.Error("check(inactive) = nil, want an error")
		}
		for i := range 4 {
			if want := uint64(map[bool]int{true: 1}[i == tc.slot]); counts[i].Load() != want {
				t.Errorf("%s into the slots: counts[%d] = %d, want %d", tc.since, i, counts[i].Load(), want)
			}
		}
	}
}
