package publish_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/publish"
	"github.com/sessiond/sessiond/token"
)

// cutOff cuts subject off at at on the env's store, until an hour later.
func (e *feedEnv) cutOff(t *testing.T, subject string, at time.Time) {
	t.Helper()
	if err := e.store.CutOff(context.Background(), subject, at, at.Add(time.Hour)); err != nil {
		t.Fatalf("CutOff(%q) = %v", subject, err)
	}
}

// wantListCutoffs fails the test unless l carries exactly the cutoffs of
// the subjects in want, by hash, at the whole seconds given.
func wantListCutoffs(t *testing.T, l *token.RevocationList, want map[string]time.Time) {
	t.Helper()
	if len(l.Cutoffs) != len(want) {
		t.Fatalf("document has %d cutoffs, want %d", len(l.Cutoffs), len(want))
	}
	got := make(map[[32]byte]token.Cutoff)
	for _, c := range l.Cutoffs {
		got[c.Subject] = c
	}
	for subject, at := range want {
		c, ok := got[token.SubjectHash(subject)]
		if !ok {
			t.Fatalf("document has no cutoff for the hash of %q", subject)
		}
		if c.At.Unix() != at.Unix() || !c.Expires.After(at.Add(time.Hour)) {
			t.Errorf("cutoff of %q = %+v, want at %d, expiring after an hour", subject, c, at.Unix())
		}
	}
}

// The document carries the store's cutoffs by hash, in snapshots and
// deltas, beside its ids; without cutoffs it has no "cutoffs" member and
// its members are those it always had.
func TestRevocationsCutoffs(t *testing.T) {
	e := newFeedEnv(t, publish.RevocationsOptions{Rebuild: time.Nanosecond, FreshFor: time.Minute})
	members := func(body string) []string {
		parts := strings.Split(body, ".")
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(m))
	}
	ids := e.revoke(t, 2)
	_, _, body := feedGet(t, http.MethodGet, e.url)
	if got := strings.Join(members(body), ","); got != "epoch,fresh_until,iat,iss,retain,revoked,seq,since,snapshot" {
		t.Errorf("members without cutoffs = %s", got)
	}

	at := time.Now().Add(-time.Minute)
	e.cutOff(t, "alice@example.com", at)
	e.cutOff(t, "bob@example.com", at)
	snap := e.fetch(t, "")
	if !snap.Snapshot || snap.Seq != 4 {
		t.Fatalf("GET /revocations = seq %d snapshot %v, want a snapshot at 4", snap.Seq, snap.Snapshot)
	}
	wantListIDs(t, snap, ids...)
	wantListCutoffs(t, snap, map[string]time.Time{"alice@example.com": at, "bob@example.com": at})
	_, _, body = feedGet(t, http.MethodGet, e.url)
	if !strings.Contains(strings.Join(members(body), ","), "cutoffs") {
		t.Errorf("members = %v, want cutoffs among them", members(body))
	}
	for _, sub := range []string{"alice", "bob", "example.com"} {
		if p := payload(t, body); strings.Contains(body, sub) || strings.Contains(p, sub) {
			t.Errorf("document contains %q", sub)
		}
	}

	later := at.Add(10 * time.Second)
	e.cutOff(t, "carol", later)
	e.cutOff(t, "alice@example.com", later)
	delta := e.fetch(t, fmt.Sprintf("?since=%d&epoch=%s", snap.Seq, snap.Epoch))
	if delta.Snapshot || delta.Since != 4 || delta.Seq != 6 {
		t.Fatalf("GET ?since=4 = since %d seq %d snapshot %v, want a delta from 4 to 6", delta.Since, delta.Seq, delta.Snapshot)
	}
	wantListIDs(t, delta)
	wantListCutoffs(t, delta, map[string]time.Time{"carol": later, "alice@example.com": later})
	wantListCutoffs(t, e.fetch(t, "?since=6&epoch="+snap.Epoch), nil)
}

func payload(t *testing.T, doc string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(doc, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// signSubjectToken issues a session token of subject dated iat, with the
// server's own issuer and the active key of keys.
func signSubjectToken(t *testing.T, keys issue.SigningKeys, subject string, iat time.Time) string {
	t.Helper()
	iss := issue.New(keys, issue.WithClock(func() time.Time { return iat }))
	tok, _, err := iss.IssueFor(subject, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// End to end: a cutoff written to the real Badger store reaches an offline
// verifier over real HTTP within one sync, which then refuses the
// subject's tokens issued at or before the cutoff second with
// ErrSubjectClosed, and still accepts later ones and other subjects'.
func TestRevocationFeedCutoffEndToEnd(t *testing.T) {
	e := newFeedEnv(t, publish.RevocationsOptions{Rebuild: time.Nanosecond, FreshFor: time.Minute})
	ctx := context.Background()
	v := token.NewVerifier(e.ring, token.WithFeed(e.url))
	if err := v.Feed().Sync(ctx); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	now := time.Now()
	cut := now.Add(-10 * time.Second)
	before := signSubjectToken(t, e.ring, "alice@example.com", cut.Add(-10*time.Second))
	same := signSubjectToken(t, e.ring, "alice@example.com", cut)
	after := signSubjectToken(t, e.ring, "alice@example.com", cut.Add(time.Second))
	bob := signSubjectToken(t, e.ring, "bob@example.com", cut.Add(-10*time.Second))
	for name, tok := range map[string]string{"before": before, "same": same, "after": after, "bob": bob} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("Verify(%s) before the cutoff = %v", name, err)
		}
	}

	e.cutOff(t, "alice@example.com", cut)
	if err := v.Feed().Sync(ctx); err != nil { // one sync: a delta
		t.Fatalf("Sync() = %v", err)
	}
	for name, tok := range map[string]string{"issued before the cutoff": before, "issued in the cutoff second": same} {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, token.ErrSubjectClosed) || !errors.Is(err, token.ErrInvalid) {
			t.Errorf("Verify(%s) = %v, want ErrSubjectClosed", name, err)
		}
	}
	for name, tok := range map[string]string{"issued after the cutoff second": after, "another subject": bob} {
		if c, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("Verify(%s) = %v, want nil", name, err)
		} else if c.Subject == "" {
			t.Errorf("Verify(%s).Subject is empty", name)
		}
	}
	if st := v.Feed().Status(); st.Cutoffs != 1 {
		t.Errorf("Status().Cutoffs = %d, want 1", st.Cutoffs)
	}

	// A fresh verifier gets it from its first snapshot.
	fresh := token.NewVerifier(e.ring, token.WithFeed(e.url))
	if err := fresh.Feed().Sync(ctx); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	if _, err := fresh.Verify(ctx, before); !errors.Is(err, token.ErrSubjectClosed) {
		t.Errorf("Verify() after a snapshot = %v, want ErrSubjectClosed", err)
	}
}
