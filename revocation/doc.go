// Package revocation keeps the list of closed sessions: the IDs (the JWT
// "jti", a UUID) of tokens that must be refused although their signature and
// expiry are still valid.
//
// Start here: [Store] is the contract the rest of sessiond relies on, and
// [OpenBadger] returns the implementation that runs on a single node.
//
//	store, err := revocation.OpenBadger("/var/lib/sessiond/revocations", revocation.Options{
//		Logger:    logger,
//		Retention: leeway, // the verifiers' leeway on exp
//	})
//	if err != nil {
//		return err // ErrLocked: another sessiond owns it; ErrDamaged, ErrMissing: refuse to serve
//	}
//	defer store.Close()
//
//	// Closing a session whose token expires at exp; the store keeps the
//	// record until exp plus its retention.
//	if err := store.Revoke(ctx, jti, exp); err != nil {
//		return err // the session is NOT known to be closed; report failure, let the caller retry
//	}
//
//	// Verifying a token:
//	revoked, err := store.IsRevoked(ctx, jti)
//	if err != nil || revoked {
//		return errRejected // fail closed: an unknown answer is treated as revoked
//	}
//
// # The Store contract
//
// A closed token must never come back to life, crash or restart included.
// Three promises make that true:
//
//   - Durability. When [Store.Revoke] returns nil the record is on stable
//     storage (written and fsynced): it survives a crash, a SIGKILL or a power
//     loss. A non-nil error means the record may or may not have been written;
//     the caller must not report the session as closed, and may retry, since
//     revoking an ID again is harmless.
//   - Fail-closed errors. [Store.IsRevoked] returns an error only when it does
//     not know the answer, and the boolean is then meaningless. Callers treat
//     such an error exactly like "revoked". An implementation never returns
//     (false, nil) unless it positively knows the ID is not revoked, and after
//     [Badger.Close] every method returns an error wrapping [ErrClosed].
//   - Never shortening. A record lives at least until the token's expiry
//     plus the retention. Revoking again with a later expiry extends it; an
//     earlier one never shortens it, and the retention only grows.
//
// Records are not kept forever: once a token is past its expiry by more
// than any verifier's leeway it is refused on its expiry alone, so its
// revocation record may vanish. That is what the retention is for: it must
// be at least the leeway on exp of every verifier that consults the store.
// A store remembers the largest [Options.Retention] it was ever opened with,
// and extends every stored record when a larger one is given, so raising the
// leeway between runs cannot let a closed token verify once its old record
// expired. A Revoke whose record would already be past writes nothing and
// returns nil.
//
// # Damage, the seal and the journal
//
// Badger opens a directory that lost its MANIFEST, a table, its memtable or
// everything as if nothing had happened, with fewer revocations, and deletes
// tables its MANIFEST does not list. A revocation list must never do that,
// so the store keeps a seal beside its directory (dir + ".seal", seal.go):
// the store's epoch, the sequence number of its latest checkpoint, and the
// generation of its journal. [OpenBadger] checks the files before Badger
// sees them (preflight.go: the MANIFEST replays to its end and lists exactly
// the tables there are, each table's checksums hold), then opens a scratch
// copy and holds its epoch and sequence number against the seal, reads the
// journal, and only then opens the store itself; any mismatch is
// [ErrDamaged] or [ErrMissing], and nothing on disk is changed. [Discard]
// is the deliberate way out.
//
// Every acknowledged write is on disk before Revoke returns: in the
// journal (dir + ".journal", journal.go), one synced record per group
// commit, written before the batch is committed to Badger, which does not
// sync its own log. A checkpoint, every [Options.CheckpointInterval] (1 s)
// while there are writes, when the journal fills and on Close, syncs
// Badger and records its sequence number in the seal with a new journal
// generation. OpenBadger refuses a Badger that lacks a checkpointed write,
// and commits again from the journal the writes since the checkpoint that
// Badger lost (as a power failure loses what it never synced). A journal
// that is missing, or damaged between two records, is [ErrDamaged]. What
// the seal cannot tell: a journal that lost its last records (truncated)
// together with a Badger that lost the same writes, in the second before
// a checkpoint.
//
// # Disk space
//
// Badger writes its memtable log and tables through memory maps; a mapped
// write to a full file system kills the process with SIGBUS instead of
// returning an error. The store therefore keeps a reserve of free space
// (space.go: 40 MiB plus the size of its tables) and refuses below it:
// Revoke returns [ErrDiskFull], Reclaim skips the compaction, Close leaves
// the memtable to be replayed rather than flushing it, and OpenBadger
// refuses to open.
//
// # TTL rounding
//
// Badger stores expiry as whole Unix seconds. The Badger implementation
// rounds `until` UP to the next whole second, so an entry never disappears
// before `until`: an `until` 12.3 s past some epoch second expires at 13 s,
// i.e. it stays revoked for up to one second longer than asked, never
// shorter. Badger compares expiry with the wall clock (time.Now), while the
// "already in the past" check in Revoke uses [Options.Now]; in production both
// are the same clock.
//
// # The Badger implementation
//
// [Badger] is an embedded, single-process store in a directory of its own.
// Keys are the 16 bytes of the UUID; the value is the expiry in Unix seconds
// (the same number Badger keeps as the entry's ExpiresAt, so a dump of the
// directory is readable without Badger's metadata) followed by the write's
// sequence number, 8 bytes big-endian each. Values of 8 bytes, written before
// the store kept sequence numbers, are read as sequence number 0. Expired
// entries are invisible to reads at once and are removed from disk by
// Badger's compactions.
//
// Records of the store's own have keys of other lengths, so that they can
// never collide with an entry: the sequence number of the latest write
// ("\x00meta/seq"), the epoch ("\x00meta/epoch"), the retention
// ("\x00meta/retain") and a mark that the store has a seal
// ("\x00meta/sealed"). Cutoff records ([Cutoffs]: every token of a
// subject issued at or before a second is closed) have the key "\x01cut/"
// followed by the SHA-256 of the subject, which is never stored in clear
// (subjects may be e-mail addresses), and the value of an entry with the
// cutoff second in place of the expiry; Badger's ExpiresAt is the until
// given to [Badger.CutOff], rounded up, plus one second. They go through
// the same group commit and journal as Revoke, with sequence numbers of their
// own, are extended by a larger retention like entries, and are in the
// feed ([Changes.Cutoffs], by hash only). [Badger.Cutoff] answers from a map in memory (hash to cutoff and
// expiry), loaded by the scan at open and updated by the writer after each
// commit; [Badger.Len] counts entries only.
//
// Opening takes Badger's directory lock before anything else; a directory that
// is held by another process, or by another open [Badger] in this process,
// fails at once with [ErrLocked] instead of waiting.
//
// Writes are group-committed: one goroutine owned by [Badger] collects every
// Revoke that arrives while the previous commit is being synced, writes them
// as one journal record, syncs it (fdatasync: the journal's blocks are
// allocated when it is made) and commits them in one transaction, so N
// concurrent Revokes cost one sync instead of N, and a batch one sync
// instead of three (Badger's value log and write-ahead log, then the seal,
// as before the journal). Badger's own write pipeline batches concurrent
// transactions but still syncs its write-ahead log once per transaction,
// which the benchmarks in this package measure (see BenchmarkRevoke).
// Because that one goroutine is the only writer, the read-modify-write
// that keeps the later expiry needs no conflict detection.
//
// Badger is tuned for this workload rather than its defaults, which target
// large values and gigabytes of cache: tiny values kept in the LSM tree,
// point lookups that mostly miss (tighter bloom filters), and a service that
// must stay under 64 MiB of RSS when idle and under 256 MiB with a million
// live entries. Each choice is explained next to it in badgerOptions.
// A background goroutine runs [Badger.Reclaim] every [Options.GCInterval].
//
// # The feed
//
// Offline verifiers keep a copy of the list, kept current by the changes
// since the copy was made ([Feed]). Every write that stores an entry (a
// revocation, or an extension to a later expiry) gets the next number of a
// counter; the group-commit writer assigns the numbers and stores the
// counter in the same transaction as the entries, so numbers only grow,
// survive a restart and a crash, and are never durable without their
// entries or the other way round. The epoch, 16 random bytes made when the
// store is created, tells a copy of this list from a copy of a list that
// was wiped or replaced, whose numbers started again.
//
// [Badger.Changes] answers from an index in memory, loaded by one scan at
// open and extended by the writer after each commit: the unexpired entries
// in order of sequence number, 32 bytes each (32 MiB for a million). A delta
// is a binary search and a copy. Expired entries are skipped at once and
// dropped from the index by [Badger.Reclaim]. [Badger.IsRevoked] still
// reads Badger: the index is ordered by sequence number, not by id, and an
// id-keyed copy in memory would cost another 40 to 50 MiB per million
// entries to turn a lookup of 1 to 6 µs into one of 0.3 µs, next to a
// signature check of tens of µs.
//
// # Other backends
//
// [Store] is deliberately small so that other backends can implement it, for
// example a distributed store shared by several sessiond nodes, where a
// revocation on one node must be seen by all. Such a backend must keep the
// same three promises: nil from Revoke only once the record is durable
// (for a replicated store: acknowledged by enough replicas to survive the
// loss of a node), errors whenever the answer is unknown, and never shorten a
// record. Consumers such as the token package declare their own one-method
// interface (IsRevoked) and accept any of them.
package revocation
