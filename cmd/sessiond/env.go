package main

import (
	"flag"
	"log/slog"
	"os"
	"slices"
	"strings"
)

// knownEnv is every SESSIOND_* variable that a command other than serve
// reads and serve does not (serve knows its own flags' from its flag set):
// an environment shared by several commands must not make serve warn.
// TestKnownEnvironment keeps the list equal to the commands' flags.
var knownEnv = []string{
	"SESSIOND_ACTIVATE_AFTER", "SESSIOND_ALG", "SESSIOND_NOW", "SESSIOND_RSA_BITS", "SESSIOND_JSON", // sessiond keys
	"SESSIOND_JWKS", "SESSIOND_REVOCATIONS", "SESSIOND_ALLOW_STALE", // sessiond verify
	"SESSIOND_YES",                                                                                           // sessiond revocations
	"SESSIOND_SERVER", "SESSIOND_SECRET_FILE", "SESSIOND_TIMEOUT", "SESSIOND_EXPIRES_IN", "SESSIOND_SUBJECT", // sessiond session
}

// flagEnv returns the environment variables of fs's flags.
func flagEnv(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		names = append(names, "SESSIOND_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")))
	})
	return names
}

// warnUnknownEnv logs at Warn every SESSIOND_* variable of the process's
// environment that neither own (serve's) nor knownEnv names: most likely a
// typo, which would otherwise leave a setting at its default unnoticed.
// The closest known name, when it is close (an edit distance of at most
// 2), is given as did_you_mean. Values are never logged.
func warnUnknownEnv(log *slog.Logger, own []string) {
	known := append(slices.Clone(own), knownEnv...)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "SESSIOND_") || slices.Contains(known, name) {
			continue
		}
		best, dist := "", 3
		for _, k := range known {
			if d := editDistance(name, k); d < dist {
				best, dist = k, d
			}
		}
		if best == "" {
			log.Warn("unknown environment variable, ignored", "name", name)
		} else {
			log.Warn("unknown environment variable, ignored", "name", name, "did_you_mean", best)
		}
	}
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
