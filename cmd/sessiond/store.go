package main

// This file is --revocation-store and --revocation-store-replicas: where
// the revocation list lives, for serve and revocations import.

import (
	"flag"
	"fmt"

	"github.com/sessiond/sessiond/server"
)

// storeFlags registers the store's flags into the server configuration.
func (c *serveConfig) storeFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.RevocationStore, "revocation-store", server.StoreBadger, `where the revocation list lives: "badger" (Badger under --data-dir), redis://[user:password@]host:port[/db] (one Valkey or Redis server shared by several nodes), rediss://... (over TLS), or redis://host:port?addr=host2:port2&addr=host3:port3 (a cluster)`)
	fs.IntVar(&c.RevocationStoreReplicas, "revocation-store-replicas", 0, "with a Valkey or Redis store: how many replicas must have a close (WAITAOF) before it is acknowledged")
}

// checkStore checks the store's flags offline, before anything is written.
func (c *serveConfig) checkStore() error {
	if err := server.CheckStoreURL(c.RevocationStore); err != nil {
		return fmt.Errorf("%w; set --revocation-store (or SESSIOND_REVOCATION_STORE)", err)
	}
	badger := c.RevocationStore == "" || c.RevocationStore == server.StoreBadger
	switch {
	case c.RevocationStoreReplicas < 0:
		return fmt.Errorf("--revocation-store-replicas must not be negative, not %d", c.RevocationStoreReplicas)
	case c.RevocationStoreReplicas > 0 && badger:
		return fmt.Errorf("--revocation-store-replicas %d needs a Valkey or Redis --revocation-store (Badger has no replicas): set --revocation-store to a redis:// URL, or leave --revocation-store-replicas out", c.RevocationStoreReplicas)
	}
	return nil
}
