package valkey

// This file is the group commit of revocations: Revoke calls that arrive
// while a write is on its way wait for it to finish and then go together,
// as one script, one WAITAOF and one fence, as Badger's writes share an
// fsync. Each still learns its own outcome.

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation"
)

// maxBatch is the most revocations one script writes: it bounds how long
// the server runs one script (about 10 µs a revocation) and so how long
// it answers nobody else.
const maxBatch = 128

// revokeReq is one revocation waiting for its batch: what to write, and
// once done is closed, how it went.
type revokeReq struct {
	id        uuid.UUID
	retention int64  // the writer's, in ns
	exp       uint64 // the record's expiry, Unix seconds
	retry     bool   // the store's retention was larger (now raised): recompute and call again
	err       error
	done      chan struct{}
}

// batcher holds the revocations waiting for the write on its way.
type batcher struct {
	mu      sync.Mutex
	pending []*revokeReq
	busy    bool // a writeBatches goroutine runs
}

// submit queues req and waits for its batch to be written, or for ctx to
// end (then the revocation may or may not be written; calling Revoke again
// is safe).
func (s *Store) submit(ctx context.Context, req *revokeReq) (retry bool, err error) {
	req.done = make(chan struct{})
	s.batch.mu.Lock()
	s.batch.pending = append(s.batch.pending, req)
	if !s.batch.busy {
		s.batch.busy = true
		go s.writeBatches()
	}
	s.batch.mu.Unlock()
	select {
	case <-req.done:
		return req.retry, req.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// writeBatches writes what is pending, maxBatch at a time, until nothing
// is.
func (s *Store) writeBatches() {
	for {
		s.batch.mu.Lock()
		n := min(len(s.batch.pending), maxBatch)
		if n == 0 {
			s.batch.busy = false
			s.batch.mu.Unlock()
			return
		}
		batch := make([]*revokeReq, n)
		copy(batch, s.batch.pending)
		rest := copy(s.batch.pending, s.batch.pending[n:])
		clear(s.batch.pending[rest:]) // hold no finished request
		s.batch.pending = s.batch.pending[:rest]
		s.batch.mu.Unlock()
		s.writeBatch(batch)
		for _, req := range batch {
			close(req.done)
		}
	}
}

// writeBatch runs revokeScript for batch and sets each request's outcome.
// The batch's context is its own, bounded by write: one caller giving up
// must not fail the others.
func (s *Store) writeBatch(batch []*revokeReq) {
	fail := func(err error) {
		for _, req := range batch {
			req.err = err
		}
	}
	if s.closed.Load() {
		fail(revocation.ErrClosed)
		return
	}
	keys := append(make([]string, 0, 5+len(batch)), s.keys.seq, s.keys.rseq, s.keys.rexp, s.keys.epoch, s.keys.retain)
	args := append(make([]string, 0, 2+4*len(batch)), s.epoch, trimPerWrite)
	for _, req := range batch {
		exp := strconv.FormatUint(req.exp, 10)
		keys = append(keys, s.recordKey(req.id))
		args = append(args, strconv.FormatInt(req.retention, 10), exp, exp+"000", req.id.String())
	}
	res, err := s.write(context.Background(), revokeScript, keys, args).ToArray()
	if err != nil {
		fail(s.wrap(err))
		return
	}
	if len(res) != 2*len(batch) {
		fail(fmt.Errorf("unexpected answer of %d values from the store's script for %d revocations", len(res), len(batch)))
		return
	}
	for i, req := range batch {
		status, _ := res[2*i].ToString()
		switch status {
		case "OK", "KEPT":
		case "RETAIN":
			v, _ := res[2*i+1].ToString()
			req.retry, req.err = true, s.raiseRetention(v)
		default:
			req.err = fmt.Errorf("unexpected answer %q from the store's script", status)
		}
	}
}
