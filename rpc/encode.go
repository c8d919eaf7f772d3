package rpc

// This file is the response encoder: pooled response buffers (outBuf) with
// fast paths for common results, and the writing of a JSON reply to HTTP.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// contentTypeJSON is the Content-Type header value of every reply, shared
// by all of them: read-only, and of capacity 1, so that Header.Add copies
// it rather than append in place.
var contentTypeJSON = []string{"application/json"}[:1:1]

// writeJSON writes a reply. Its header values are shared, read-only slices
// rather than new ones per reply (two allocations a request): http.Header's
// Set and Del replace or drop a value slice and Add copies one of capacity
// 1, so only code that assigns into a value slice in place could change
// them, and nothing in net/http does.
func (h *Handler) writeJSON(w http.ResponseWriter, status int, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = contentTypeJSON
	hdr["Content-Length"] = h.contentLength(len(body))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client is gone; nothing left to tell it
}

// contentLength returns the Content-Length header value for n bytes.
func (h *Handler) contentLength(n int) []string {
	if n >= len(h.lengths) {
		return []string{strconv.Itoa(n)}
	}
	if v := h.lengths[n].Load(); v != nil {
		return *v
	}
	v := []string{strconv.Itoa(n)}[:1:1]
	h.lengths[n].CompareAndSwap(nil, &v)
	return *h.lengths[n].Load()
}

func (h *Handler) getBuf() *outBuf { return h.buffers.Get().(*outBuf) }

func (h *Handler) putBuf(b *outBuf) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	h.buffers.Put(b)
}

// outBuf is a pooled response buffer with an encoder that writes into it.
type outBuf struct {
	bytes.Buffer
	enc *json.Encoder
}

// writeResult appends {"jsonrpc":"2.0","result":…,"id":…}. On error out is unchanged.
func (b *outBuf) writeResult(result any, id []byte) error {
	mark := b.Len()
	b.WriteString(`{"jsonrpc":"2.0","result":`)
	if err := b.writeValue(result); err != nil {
		b.Truncate(mark)
		return err
	}
	b.writeID(id)
	return nil
}

// writeError appends {"jsonrpc":"2.0","error":{…},"id":…}. On error out is unchanged.
func (b *outBuf) writeError(e *Error, id []byte) error {
	mark := b.Len()
	b.WriteString(`{"jsonrpc":"2.0","error":`)
	if err := b.writeValue(e); err != nil {
		b.Truncate(mark)
		return err
	}
	b.writeID(id)
	return nil
}

func (b *outBuf) writeID(id []byte) {
	b.WriteString(`,"id":`)
	if id == nil {
		b.WriteString("null")
	} else {
		b.Write(id) // a scalar sliced from valid JSON: nothing to compact
	}
	b.WriteByte('}')
}

// writeValue appends v as JSON, with fast paths for common results.
func (b *outBuf) writeValue(v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case json.RawMessage:
		if v == nil {
			b.WriteString("null")
			return nil
		}
		return json.Compact(&b.Buffer, v) // validates; writes nothing on error
	case bool:
		b.Write(strconv.AppendBool(b.AvailableBuffer(), v))
	case int:
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(v), 10))
	case int64:
		b.Write(strconv.AppendInt(b.AvailableBuffer(), v, 10))
	default:
		if err := b.enc.Encode(v); err != nil { // writes nothing on error
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	return nil
}
