package main

// This file is `sessiond revocations export` and `import`: the live
// revocations and subject cutoffs of a store as JSON lines, to move a
// Badger data dir's list into a Valkey store (or any store into another).

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/revocation/valkey"
	"github.com/sessiond/sessiond/server"
)

// exportLine is one line of an export: a revocation (JTI) or a subject
// cutoff (Cutoff, the hex SHA-256 of the subject, with At), each with the
// instant its record expires (Until), all in whole Unix seconds.
type exportLine struct {
	JTI    string `json:"jti,omitempty"`
	Cutoff string `json:"cutoff,omitempty"`
	At     *int64 `json:"at,omitempty"`
	Until  int64  `json:"until"`
}

// hashCutter is a store that can write a subject cutoff it knows only by
// the subject's SHA-256, as an export carries it: CutOffHash keeps the
// record until exactly until (the Until the store's feed gave), and
// returns nil only once it is durable, like CutOff.
type hashCutter interface {
	CutOffHash(ctx context.Context, hash [32]byte, at, until time.Time) error
}

// Both stores take cutoffs by hash.
var (
	_ hashCutter = (*revocation.Badger)(nil)
	_ hashCutter = (*valkey.Store)(nil)
)

// importForm is what every refusal of an input line says a line must be.
const importForm = `want {"jti":"UUID","until":UNIX} or {"cutoff":"64 hex digits","at":UNIX,"until":UNIX}, as sessiond revocations export writes`

// maxExportLine bounds one line of import's input; a valid line is under
// 200 bytes.
const maxExportLine = 4096

func revocationsExport(args []string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("sessiond revocations export", revocationsUsage, stderr)
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "the data dir whose revocation list (DATA_DIR/revocations, Badger) to export")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond revocations export: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if c.dataDir == "" {
		return errNoDataDir
	}
	if _, err := os.Stat(c.storeDir()); err != nil {
		return fmt.Errorf("no revocation list at %s: check --data-dir", c.storeDir())
	}
	// Open as the server does, with all its checks (a damaged list is
	// refused, not exported short) and its lock; the retention is never
	// lowered, so no record changes.
	store, err := revocation.OpenBadger(c.storeDir(), revocation.Options{})
	if errors.Is(err, revocation.ErrLocked) {
		return fmt.Errorf("%w: stop the server first", err)
	}
	if err != nil {
		return storeError(err, &c)
	}
	ch, err := store.Changes(context.Background(), 0)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	for _, e := range ch.Entries {
		if err := enc.Encode(exportLine{JTI: e.ID.String(), Until: e.Until.Unix()}); err != nil {
			return err
		}
	}
	for _, cut := range ch.Cutoffs {
		at := cut.At.Unix()
		if err := enc.Encode(exportLine{Cutoff: hex.EncodeToString(cut.Subject[:]), At: &at, Until: cut.Until.Unix()}); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stderr, "exported %d revocations and %d subject cutoffs\n", len(ch.Entries), len(ch.Cutoffs))
	return nil
}

// imported is an import's input, parsed and checked.
type imported struct {
	entries map[uuid.UUID]time.Time // jti → until
	cutoffs map[[32]byte]cutoffLine
	// firstCutoff is the line number of the first cutoff, for messages.
	firstCutoff int
}

type cutoffLine struct{ at, until time.Time }

// readImport reads and checks every line of r before anything is written,
// so that bad input writes nothing: each refusal names the line. Blank
// lines are skipped; an id or subject given twice keeps the later expiry
// (and cutoff).
func readImport(r io.Reader) (*imported, error) {
	in := &imported{entries: map[uuid.UUID]time.Time{}, cutoffs: map[[32]byte]cutoffLine{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxExportLine)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("input line %d: %s: %s", n, fmt.Sprintf(format, args...), importForm)
		}
		var l exportLine
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, bad("%v", err)
		}
		if dec.More() {
			return nil, bad("more than one JSON value")
		}
		if l.Until <= 0 {
			return nil, bad("until must be a positive number of Unix seconds")
		}
		until := time.Unix(l.Until, 0)
		switch {
		case l.JTI != "" && l.Cutoff == "" && l.At == nil:
			id, err := uuid.Parse(l.JTI)
			if err != nil || id.String() != l.JTI {
				return nil, bad("jti %q is not a UUID in its canonical form", l.JTI)
			}
			if until.After(in.entries[id]) {
				in.entries[id] = until
			}
		case l.Cutoff != "" && l.JTI == "" && l.At != nil:
			raw, err := hex.DecodeString(l.Cutoff)
			if err != nil || len(raw) != 32 || hex.EncodeToString(raw) != l.Cutoff {
				return nil, bad("cutoff %q is not a SHA-256 in lower-case hex", l.Cutoff)
			}
			if *l.At < 0 || *l.At > l.Until {
				return nil, bad("at must be a number of Unix seconds from 0 to until")
			}
			h := [32]byte(raw)
			cur := in.cutoffs[h]
			in.cutoffs[h] = cutoffLine{at: maxTime(cur.at, time.Unix(*l.At, 0)), until: maxTime(cur.until, until)}
			if in.firstCutoff == 0 {
				in.firstCutoff = n
			}
		default:
			return nil, bad("neither a revocation nor a cutoff")
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("input line %d: longer than %d bytes: %s", n+1, maxExportLine, importForm)
	} else if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	return in, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func revocationsImport(args []string, stdout, stderr io.Writer) error {
	var c serveConfig
	fs := newFlagSet("sessiond revocations import", revocationsUsage, stderr)
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "the data dir of a Badger --revocation-store")
	c.storeFlags(fs)
	skipCutoffs := fs.Bool("skip-cutoffs", false, "import the revocations only, leaving out the subject cutoffs (their sessions then verify again until they expire)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond revocations import: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if err := c.checkStore(); err != nil {
		return err
	}
	badger := c.RevocationStore == "" || c.RevocationStore == server.StoreBadger
	if badger && c.dataDir == "" {
		return errNoDataDir
	}
	in, err := readImport(os.Stdin)
	if err != nil {
		return err
	}
	c.DataDir = c.dataDir
	if badger {
		if err := makeDataDir(c.dataDir); err != nil {
			return err
		}
	}
	store, err := server.OpenStore(c.Config, nil)
	if errors.Is(err, revocation.ErrLocked) {
		return fmt.Errorf("%w: stop the server first", err)
	}
	if err != nil {
		return storeError(err, &c.config)
	}
	err = importInto(context.Background(), store, in, *skipCutoffs)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	cutoffs := len(in.cutoffs)
	if *skipCutoffs {
		cutoffs = 0
	}
	fmt.Fprintf(stdout, "imported %d revocations and %d subject cutoffs\n", len(in.entries), cutoffs)
	return nil
}

// importWorkers is how many writes import keeps in flight, so that a store
// that commits concurrent writes together (Badger's group commit, the
// network round trip of Valkey) is not paid once per line.
const importWorkers = 64

// importInto writes in into store, keeping every expiry: a revocation's
// record lives until its Until, whatever the store's retention, and a
// cutoff's too (CutOffHash), unless skipCutoffs. A store without
// CutOffHash refuses input with cutoffs, unless skipCutoffs.
func importInto(ctx context.Context, store server.Store, in *imported, skipCutoffs bool) error {
	cutter, canCut := store.(hashCutter)
	if len(in.cutoffs) > 0 && !canCut && !skipCutoffs {
		return fmt.Errorf("input line %d: a subject cutoff, but this store cannot import cutoffs (they carry only the subject's hash): nothing was imported; "+
			"give --skip-cutoffs to import the revocations only (the sessions of the %d subjects cut off would then verify again until they expire)",
			in.firstCutoff, len(in.cutoffs))
	}
	// Revoke keeps a record until expires + retention + 1 s, rounded up to
	// a whole second; Until is a whole second, so this gives it back.
	back := store.Retention() + time.Second
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan func() error)
	var wg sync.WaitGroup
	for range importWorkers {
		wg.Go(func() {
			for job := range jobs {
				if err := job(); err != nil {
					cancel(err)
				}
			}
		})
	}
	send := func(job func() error) bool {
		select {
		case jobs <- job:
			return true
		case <-ctx.Done():
			return false
		}
	}
	func() {
		defer close(jobs)
		for id, until := range in.entries {
			if !send(func() error { return store.Revoke(ctx, id, until.Add(-back)) }) {
				return
			}
		}
		if skipCutoffs {
			return
		}
		for h, cut := range in.cutoffs {
			if !send(func() error { return cutter.CutOffHash(ctx, h, cut.at, cut.until) }) {
				return
			}
		}
	}()
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("import: %w; some lines may have been imported: importing again is harmless", err)
	}
	return nil
}
