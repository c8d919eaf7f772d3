// Command sessiond is the session-token service: it serves the session API
// (JSON-RPC 2.0 over HTTP) and manages its signing keys.
//
// Run "sessiond --help" for the commands and "sessiond serve --help" for the
// settings; README.md has the whole story.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2) // already explained
	default:
		var code exitCode
		if errors.As(err, &code) {
			os.Exit(int(code))
		}
		fmt.Fprintln(os.Stderr, "sessiond:", err)
		os.Exit(1)
	}
}

// errUsage reports a command line that was already explained on stderr.
var errUsage = errors.New("usage error")

// exitCode ends the process with the given status, having said why already.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

const usage = `sessiond is a session-token service: signed session tokens (JWT, EdDSA)
with a durable revocation list, served as JSON-RPC 2.0 over HTTP.

Usage:
  sessiond serve [flags]          run the service (sessiond serve --help)
  sessiond keys COMMAND [flags]   init, rotate, list, prune or remove signing keys
                                  (sessiond keys --help)
  sessiond clients COMMAND [flags]
                                  add, list or remove the callers' credentials
                                  (sessiond clients --help)
  sessiond verify --jwks FILE|URL [flags] TOKEN
                                  verify a token offline (sessiond verify --help)
  sessiond revocations reset --yes
                                  start over with an empty revocation list
                                  (sessiond revocations --help)

Every flag can also be set by an environment variable (SESSIOND_<FLAG>, e.g.
SESSIOND_DATA_DIR for --data-dir); a flag wins over the environment.
`

// run is the whole program, testable in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "keys":
		return keysCommand(args[1:], stdout, stderr)
	case "clients":
		return clientsCommand(args[1:], stdout, stderr)
	case "verify":
		return verify(ctx, args[1:], stdout, stderr)
	case "revocations":
		return revocationsCommand(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "sessiond: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
}
