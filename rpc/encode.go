package rpc

// This file is the response encoder: pooled response buffers (outBuf) with
// fast paths for common results, and the writing of a JSON reply to HTTP.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = []string{"application/json"}
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client is gone; nothing left to tell it
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
