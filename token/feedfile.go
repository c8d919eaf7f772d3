// This file is the feed's file on disk: [RevocationFeed.Load], which
// reads documents saved by the feed or from GET /revocations, and the
// in-place rewriting of the file that [WithFeedFile] names (a snapshot
// line, then delta lines, rewritten atomically or appended in place). The
// sync logic is feedsource.go.

package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// feedFile is what is known of the file the feed keeps: a snapshot line,
// then delta lines.
type feedFile struct {
	size     int64 // bytes of verified documents; 0: no snapshot in the file
	snapshot int64 // bytes of the snapshot line
	emptyAt  int64 // offset of a last line that is an empty delta, else -1
}

// Load reads revocation documents from a file, one per line, as
// [WithFeedFile] keeps them (a snapshot, then deltas) or as saved from
// GET /revocations, verifies each and applies it. The documents may be
// stale: the list is then loaded, and is stale (see [WithServeStale]).
// A snapshot that is older than the list held is refused. Loading stops at
// the first document that does not verify or apply, with an error matching
// [ErrFeed]; the documents before it stay applied.
func (f *RevocationFeed) Load(ctx context.Context, path string) error {
	f.markStarted()
	defer f.markAttempted()
	return f.load(ctx, path)
}

// load is Load without ending the wait for a first sync: Run loads its
// file first, and a verifier waits for the sync after it.
func (f *RevocationFeed) load(ctx context.Context, path string) error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	// The file holds a snapshot and deltas that together stay under
	// three times the larger of the snapshot and 1 MiB (see save).
	maxFile := 4 * max(f.opts.MaxSize, 1<<20)
	var data strings.Builder
	if info, err := file.Stat(); err == nil && info.Size() <= maxFile {
		data.Grow(int(info.Size()))
	}
	if _, err := io.Copy(&data, io.LimitReader(file, maxFile+1)); err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	if int64(data.Len()) > maxFile {
		return fmt.Errorf("load %s: %w", path, refuse(ErrTooLarge, "file larger than four times WithFeedMaxSize (%d bytes)", maxFile))
	}
	track := path == f.opts.File
	if track {
		f.file = feedFile{emptyAt: -1}
	}
	rest, offset := data.String(), int64(0)
	for n := 1; rest != ""; n++ {
		line, after, _ := strings.Cut(rest, "\n")
		end := offset + int64(len(line)) + 1
		rest = after
		doc := strings.TrimSpace(line)
		if doc == "" {
			offset = end
			continue
		}
		if int64(len(doc)) > f.opts.MaxSize {
			return fmt.Errorf("load %s, document %d: %w", path, n, refuse(ErrTooLarge, "%d bytes, more than WithFeedMaxSize (%d bytes); raise it if the list is that long", len(doc), f.opts.MaxSize))
		}
		l, err := f.parser.parseRevocations(ctx, doc, f.opts.MaxSize)
		if err == nil {
			err = f.apply(l, false)
		}
		if errors.Is(err, errGap) {
			err = &refused{errGap, nil}
		}
		if err != nil {
			return fmt.Errorf("load %s, document %d: %w", path, n, err)
		}
		if track {
			switch {
			case l.Snapshot:
				f.file = feedFile{size: end, snapshot: end - offset, emptyAt: -1}
			case f.file.size > 0:
				f.file.size, f.file.emptyAt = end, -1
				if len(l.Revoked) == 0 && len(l.Cutoffs) == 0 {
					f.file.emptyAt = offset
				}
			}
		}
		offset = end
	}
	f.sweep()
	return nil
}

// save keeps doc, just applied, in the file: a snapshot replaces the file;
// a delta is appended, in place of a last line that is an empty delta, so
// that the file ends with the newest freshness without growing with every
// sync. When the deltas outgrow the snapshot, the next sync fetches a
// snapshot to start the file again.
func (f *RevocationFeed) save(doc string, l *RevocationList) error {
	path := f.opts.File
	if l.Snapshot {
		f.file = feedFile{emptyAt: -1}
		f.wantSnapshot = false
		if err := writeFileAtomic(path, doc+"\n"); err != nil {
			return err
		}
		n := int64(len(doc)) + 1
		f.file = feedFile{size: n, snapshot: n, emptyAt: -1}
		return nil
	}
	if f.file.size == 0 {
		return nil // no snapshot in the file to add to: wait for one
	}
	at := f.file.size
	if f.file.emptyAt >= 0 {
		at = f.file.emptyAt
	}
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		f.file = feedFile{emptyAt: -1}
		return err
	}
	defer file.Close()
	end := at + int64(len(doc)) + 1
	_, err = file.WriteAt([]byte(doc+"\n"), at)
	if err == nil {
		err = file.Truncate(end)
	}
	if err != nil {
		f.file = feedFile{emptyAt: -1}
		return err
	}
	f.file.size, f.file.emptyAt = end, -1
	if len(l.Revoked) == 0 && len(l.Cutoffs) == 0 {
		f.file.emptyAt = at
	}
	if deltas := f.file.size - f.file.snapshot; deltas > max(f.file.snapshot, 1<<20) {
		f.wantSnapshot = true
	}
	return nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced, renamed over it.
func writeFileAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := io.Copy(tmp, strings.NewReader(data)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
