package revocation

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
)

func TestExpiresAt(t *testing.T) {
	tests := []struct {
		name  string
		until time.Time
		want  uint64
	}{
		{"fraction rounds up", time.Unix(12, 300_000_000), 13},
		{"one nanosecond rounds up", time.Unix(12, 1), 13},
		{"whole second stays", time.Unix(12, 0), 12},
		{"just below a second", time.Unix(12, 999_999_999), 13},
		{"epoch", time.Unix(0, 0), 0},
		{"first second", time.Unix(0, 1), 1},
		{"before epoch", time.Unix(-5, 500_000_000), 0},
		{"zero time", time.Time{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expiresAt(tt.until); got != tt.want {
				t.Errorf("expiresAt(%v) = %d, want %d", tt.until, got, tt.want)
			}
		})
	}
}

// openTest opens a store in a temporary directory and closes it when the
// test ends.
func openTest(t *testing.T) *Badger {
	t.Helper()
	b, err := OpenBadger(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("OpenBadger() = %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return b
}

// stored returns the raw record for id: Badger's ExpiresAt and the value.
func stored(t *testing.T, b *Badger, id uuid.UUID) (expires uint64, value []byte) {
	t.Helper()
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(id[:])
		if err != nil {
			return err
		}
		expires = item.ExpiresAt()
		value, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		t.Fatalf("reading %s: %v", id, err)
	}
	return expires, value
}

// wantExpiry fails the test unless id's record expires at want (Unix
// seconds, the expiry given to Revoke rounded up) plus the one second the
// store adds (see Revoke), and its value says the same.
func wantExpiry(t *testing.T, b *Badger, id uuid.UUID, want uint64) {
	t.Helper()
	want++
	got, value := stored(t, b, id)
	if got != want {
		t.Errorf("ExpiresAt of %s = %d, want %d", id, got, want)
	}
	// The value is the expiry and the sequence number of the write.
	if len(value) != 16 {
		t.Fatalf("value of %s is %d bytes, want 16", id, len(value))
	}
	if v := binary.BigEndian.Uint64(value); v != want {
		t.Errorf("value of %s = %d, want %d", id, v, want)
	}
	if seq := binary.BigEndian.Uint64(value[8:]); seq == 0 {
		t.Errorf("sequence number of %s = 0, want one assigned by the write", id)
	}
}

func TestRevokeRoundsExpiryUp(t *testing.T) {
	b := openTest(t)
	id := uuid.New()
	// An hour ahead so the wall clock never expires it during the test, with
	// a fractional second that must round up.
	sec := time.Now().Add(time.Hour).Unix()
	until := time.Unix(sec, 200_000_000)
	if err := b.Revoke(context.Background(), id, until); err != nil {
		t.Fatalf("Revoke() = %v", err)
	}
	wantExpiry(t, b, id, uint64(sec+1))
}

func TestRevokeNeverShortens(t *testing.T) {
	ctx := context.Background()
	b := openTest(t)
	base := time.Now().Truncate(time.Second)
	later := base.Add(48 * time.Hour)
	sooner := base.Add(time.Hour)
	latest := base.Add(72 * time.Hour)

	t.Run("sequential", func(t *testing.T) {
		id := uuid.New()
		if err := b.Revoke(ctx, id, later); err != nil {
			t.Fatalf("Revoke(later) = %v", err)
		}
		if err := b.Revoke(ctx, id, sooner); err != nil {
			t.Fatalf("Revoke(sooner) = %v", err)
		}
		wantExpiry(t, b, id, uint64(later.Unix()))

		if err := b.Revoke(ctx, id, latest); err != nil {
			t.Fatalf("Revoke(latest) = %v", err)
		}
		wantExpiry(t, b, id, uint64(latest.Unix()))
	})

	t.Run("concurrent", func(t *testing.T) {
		// Many callers revoke the same id with different expiries at once,
		// so some land in the same group commit and some in different ones:
		// the latest must win.
		id := uuid.New()
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				until := base.Add(time.Duration(1+i%17) * time.Hour)
				if i == 31 {
					until = latest
				}
				if err := b.Revoke(ctx, id, until); err != nil {
					t.Errorf("Revoke() = %v", err)
				}
			})
		}
		wg.Wait()
		wantExpiry(t, b, id, uint64(latest.Unix()))
	})
}

func TestBadgerLoggerLevels(t *testing.T) {
	// Badger's INFO is routine and must not reach an Info-level log.
	h := &recordHandler{}
	l := badgerLogger{log: slog.New(h)}
	l.Errorf("e %d\n", 1)
	l.Warningf("w")
	l.Infof("i")
	l.Debugf("d")
	got := h.lines
	want := []string{"ERROR e 1", "WARN w", "DEBUG i", "DEBUG d"}
	if len(got) != len(want) {
		t.Fatalf("logged %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// recordHandler is a slog.Handler that records "LEVEL message" lines.
type recordHandler struct {
	lines []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.lines = append(h.lines, r.Level.String()+" "+r.Message)
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }
