// Package valkey keeps sessiond's revocation list in Valkey or Redis, so
// that several sessiond nodes share it: a session closed on any node is
// refused by every node's next verify.
//
// Start here: [Open] takes the store's URL and returns a [Store], which
// implements the same contracts as [revocation.Badger] ([revocation.Store],
// [revocation.Cutoffs], [revocation.Feed], Retention and Close), read them
// in the revocation package's documentation.
//
//	store, err := valkey.Open(ctx, "redis://127.0.0.1:6379", valkey.Options{
//		Logger:    logger,
//		Retention: leeway,
//		Replicas:  0, // replicas that must have each close in their AOF
//	})
//	if err != nil {
//		return err // a bad URL, an unreachable store (after DialTimeout), no AOF
//	}
//	defer store.Close()
//
// # URLs
//
// redis://[user:password@]host:port[/db] is one server, rediss://... the
// same over TLS (the system roots unless Options.TLSConfig), and
// redis://host:port?addr=host2:port2&addr=host3:port3 a cluster, by its seed
// nodes (the client discovers the rest). Anything else is refused with the
// expected forms. The password never appears in an error or a log line.
//
// # The fast path: client-side caching
//
// [Store.IsRevoked] and [Store.Cutoff] read through rueidis with RESP3
// client-side caching: the first read of a key goes to the server, which
// remembers that this connection holds it; every later read answers from
// memory with no round trip, until the server sends an invalidation
// because some client (another node) wrote the key, or the key expired. An
// absent key is cached too, as nil, and invalidated the same way when a
// node revokes it. In front of rueidis's cache, each answer read (and its
// epoch check) is also kept in a plain map (known.go), which the same
// invalidations, delivered to rueidis's OnInvalidations callback, empty:
// a hot verify then costs a map lookup (about 30 ns) instead of two
// DoCache calls (about 700 ns). There is no Bloom filter on this store,
// unlike Badger's: a filter per node would go stale when another node
// writes, and the map already answers hot ids from memory.
//
// # Failing closed
//
// The cache is only trusted while its connection lives. rueidis drops a
// connection's whole cache when the connection ends (pipe._exit calls
// cache.Close, in pipe.go of rueidis v1.0.79), and a connection ends on a
// read error (the server died: a SIGKILL closes its sockets at once) or
// when the background PING, sent every second, goes unanswered for 2 s (a
// hung server or a cut network). Reads then go to the server, fail, and
// IsRevoked and Cutoff return errors, never an answer from the old cache,
// until rueidis has reconnected, with an empty cache, by itself; rueidis
// then also calls OnInvalidations with nil, which empties the map. Every
// read that is not in the map also checks the list's epoch (cached too): a
// server that lost its data, or was flushed, answers "no epoch", which is
// an error ([ErrReplaced]), not "never revoked". A flush also invalidates
// every key, and a change of the epoch key invalidates it: both empty the
// map, so an answer from the map always comes with an epoch that was
// current when it was read.
//
// # Writes
//
// Each Revoke and CutOff is one Lua script, atomic on the server: it keeps
// the later expiry (and the later cutoff), sets the key with PXAT at the
// instant Badger's TTL would use (expiry plus retention plus one second,
// rounded up to the second), takes the next number of the one sequence
// counter, and indexes the write for the feed in sorted sets scored by
// sequence number and by expiry. The script and then WAITAOF (or WAIT) go
// down one connection, because WAITAOF waits for the writes of its own
// connection; Revoke returns nil only once WAITAOF reports the local AOF
// fsync and Options.Replicas replicas (see docs/valkey.md for servers
// without WAITAOF). Every key of a store has the hash tag {prefix}, so a
// cluster keeps the whole list in one slot on one master (and its
// replicas): the cluster gives failover, not write sharding, which is fine
// because closes are rare next to verifies, and verifies never reach the
// server once cached.
//
// # The feed
//
// [Store.Changes] and [Store.Head] run one read script, so the epoch, the
// sequence number and the entries come from one instant, and every node
// answers the same since with the same list. docs/valkey.md has the key
// layout and the scripts.
package valkey
