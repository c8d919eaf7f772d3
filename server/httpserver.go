package server

import (
	"log/slog"
	"net/http"
	"time"
)

// NewHTTPServer returns the HTTP server that serves handler, with the limits
// that keep slow or oversized clients from holding the service:
//
//   - ReadHeaderTimeout, 5 s: a client that trickles its request line and
//     headers (slowloris) is cut off 5 s after its request began, whatever
//     rate it sends at.
//   - ReadTimeout, 30 s: the same for the whole request, body included; the
//     handler's read of the body then fails and the connection is closed.
//   - WriteTimeout, 30 s: a client that does not read its reply.
//   - IdleTimeout, 2 min: a keep-alive connection with no request.
//   - [MaxHeaderBytes], 16 KiB exactly, for the request line and the headers
//     up to and including the blank line that ends them: one byte more gets
//     431 (a JSON-RPC error object, see [edgeConn.Write]) and the
//     connection is closed. net/http reads MaxHeaderBytes plus 4096 bytes
//     of "bufio slop" before it gives up, so MaxHeaderBytes is set 4096
//     below the limit. (A client that pipelines requests may get up to
//     4 KiB more for the second, which was buffered with the first.)
//
// Each connection has a goroutine of its own, so a slow client holds only
// its own connection. The body and batch limits are the JSON-RPC handler's
// (rpc.HandlerOptions). net/http's own complaints (a failed TLS handshake, a
// panicking handler) go to log at Warn. The 431 as a JSON-RPC error object and
// the connection cap come from the listener [Server] serves it on, not from
// these settings.
func NewHTTPServer(handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    MaxHeaderBytes - netHTTPHeaderSlack,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

const (
	// MaxHeaderBytes is the most bytes a request line and its headers may
	// take, the final blank line included.
	MaxHeaderBytes = 16 << 10
	// netHTTPHeaderSlack is what net/http reads beyond MaxHeaderBytes
	// (http.Server.initialReadLimitSize).
	netHTTPHeaderSlack = 4096
)
