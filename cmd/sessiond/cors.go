package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/sessiond/sessiond/server"
)

// corsFlag registers --cors-origin on fs, into origins: repeatable, and
// comma-separated too (as SESSIOND_CORS_ORIGIN gives them).
func corsFlag(fs *flag.FlagSet, origins *[]string) {
	fs.Func("cors-origin", "web origin (scheme://host[:port], such as https://app.example.com) whose pages may call the JSON-RPC endpoint from a browser; repeatable, or comma-separated (SESSIOND_CORS_ORIGIN); \"*\" is refused; none: CORS off", func(v string) error {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				*origins = append(*origins, o)
			}
		}
		return nil
	})
}

// checkCORS checks every origin as the server will, naming the setting.
func checkCORS(origins []string) error {
	for _, o := range origins {
		if _, err := server.CheckCORSOrigin(o); err != nil {
			return fmt.Errorf("--cors-origin (SESSIOND_CORS_ORIGIN): %w", err)
		}
	}
	return nil
}
