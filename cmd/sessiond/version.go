package main

import (
	"fmt"
	"io"

	"github.com/sessiond/sessiond/server"
)

// version prints what the binary knows of its build (`sessiond version`,
// `sessiond --version`): the module version ("devel" for a build from a
// work tree), the VCS revision and whether the tree was modified, and the
// Go version, from the build info the Go toolchain records.
func version(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "sessiond version: unexpected argument %q (it takes none)\n", args[0])
		return errUsage
	}
	b := server.ReadBuildInfo()
	rev := b.Revision
	switch {
	case rev == "":
		rev = "unknown (built without VCS information)"
	case b.Modified:
		rev += " (modified)"
	}
	_, err := fmt.Fprintf(stdout, "sessiond %s\nrevision: %s\ngo: %s\n", b.Version, rev, b.GoVersion)
	return err
}
