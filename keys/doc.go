// Package keys holds sessiond's signing keys and their lifecycle. It knows
// nothing of JWT, HTTP or storage engines: it keeps private keys, decides
// which one signs, and stores them in one file.
//
// # Start here
//
// A [Keyring] is what a server uses: [OpenKeyring] loads the key file (making
// a first Ed25519 key when there is none), picks the signing key, answers
// key-id look-ups for verification, and follows changes that the `sessiond
// keys` commands make to the file while the server runs. The commands change
// the file through [Update], which locks it, so two of them at once never lose
// a key; only [Create] (and OpenKeyring, through it) makes a new file.
//
// # Lifecycle
//
// Each [Key] has an activation time; everything else follows from the order
// of activation times and a [Policy]:
//
//   - next: published, not signing yet (its activation time is in the future);
//   - active: signs new tokens; the key with the latest activation time that
//     has passed, so exactly one at a time;
//   - retired: a later key has taken over; it still verifies the tokens it
//     signed, until the last of them can have expired (the time it stopped
//     signing + Policy.MaxTokenLifetime + Policy.Leeway);
//   - expired: it can have signed no live token; [Set.Prune] removes it.
//
// Only the methods in lifecycle.go change which key signs: [Set.First] (and
// [Init]) make the first key, active at once; [Set.Rotate] (and [Rotate])
// add the next one, by default [Policy.ActivationDelay] after it is added,
// so that every verifier that refreshes its copy of the published keys on
// schedule knows it before it signs anything; [Set.Remove] (and [Remove])
// take out a compromised key but refuse the active one ([ErrActiveKey]);
// [Set.Prune] (and [Prune], [Keyring.Prune]) drop expired keys. A key's
// times are read through [Key.Created] and [Key.Activates]; nothing else
// can change them, since they order the set.
//
// # The key file
//
// One JSON file (keys.json in the data directory) with mode 0600 holds every
// key, the private halves in PKCS #8. It is written atomically (temporary
// file, fsync, rename, directory fsync). [Load] refuses a file that others
// can read ([ErrInsecure]), one it cannot parse ([ErrCorrupt]), a symbolic
// link or anything else but a regular file ([ErrNotRegular]) and one without
// keys ([ErrNoKeys]); a running [Keyring] then keeps its last good keys.
package keys

import "errors"

// Errors returned by this package; match them with errors.Is.
var (
	// ErrAlgorithm means an unsupported algorithm or a key unfit for it.
	ErrAlgorithm = errors.New("unsupported key algorithm")
	// ErrInsecure means the key file can be read by others than its owner.
	ErrInsecure = errors.New("key file is not private")
	// ErrCorrupt means the key file cannot be parsed.
	ErrCorrupt = errors.New("key file is corrupt")
	// ErrNotRegular means the key file is a symbolic link (dangling or not),
	// a directory or anything else but a regular file. Links are refused,
	// not followed: saving renames a new file over the old one, which would
	// replace the link.
	ErrNotRegular = errors.New("key file is not a regular file")
	// ErrNoKeys means the key file holds no key; a key file is never saved
	// without one.
	ErrNoKeys = errors.New("key file holds no keys")
	// ErrNoActiveKey means no key has activated yet, so nothing can sign.
	ErrNoActiveKey = errors.New("no active signing key")
	// ErrUnknownKey means no published key has the requested id (or, from
	// [Set.Remove], that the set holds no key with it).
	ErrUnknownKey = errors.New("unknown key id")
	// ErrActiveKey means a removal was refused because the key signs new
	// tokens now.
	ErrActiveKey = errors.New("refusing to remove the active key")
)
