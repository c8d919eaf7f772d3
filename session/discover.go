package session

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"strconv"
	"time"

	"github.com/sessiond/sessiond/rpc"
)

// openRPC is the OpenRPC document (https://spec.open-rpc.org) of the
// session API, kept in one JSON file so that it reads and diffs as a
// document: every method with the JSON Schema of its params and result, the
// errors it answers (codes and messages as the server sends them) and
// examples, those of the API document among them. Its maximum lifetime is
// DefaultMaxExpiresIn; [OpenRPC] puts in the configured one.
//
//go:embed openrpc.json
var openRPC []byte

// defaultMaxSecs is DefaultMaxExpiresIn in seconds as openrpc.json spells it.
var defaultMaxSecs = []byte(strconv.FormatInt(int64(DefaultMaxExpiresIn/time.Second), 10))

// OpenRPC returns the OpenRPC document that rpc.discover answers with for a
// server whose longest session lifetime is maxExpiresIn (zero or less means
// DefaultMaxExpiresIn): the schema's maximum of expires_in and the message
// that refuses a larger one name that many seconds, as open_session does.
// The result is a new slice of valid, compact JSON.
func OpenRPC(maxExpiresIn time.Duration) []byte {
	if maxExpiresIn <= 0 {
		maxExpiresIn = DefaultMaxExpiresIn
	}
	secs := []byte(strconv.FormatInt(int64(maxExpiresIn/time.Second), 10))
	doc := bytes.ReplaceAll(openRPC, defaultMaxSecs, secs)
	var out bytes.Buffer
	if err := json.Compact(&out, doc); err != nil {
		panic("session: openrpc.json is not valid JSON: " + err.Error()) // caught by the tests
	}
	return out.Bytes()
}

// discover answers rpc.discover (OpenRPC service discovery) with doc.
func discover(doc json.RawMessage) rpc.Method {
	return rpc.Method{Call: func(context.Context, rpc.Params) (any, error) { return doc, nil }}
}
