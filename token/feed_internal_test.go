package token

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzDecodeRevoked checks the binary revoked list: the decoder never
// panics, and whatever it accepts is canonical, so that encoding what it
// decoded gives back the same bytes.
func FuzzDecodeRevoked(f *testing.F) {
	enc := func(entries ...Revoked) []byte {
		b := binary.AppendUvarint(nil, uint64(len(entries)))
		for _, e := range entries {
			b = append(b, e.ID[:]...)
			b = binary.AppendUvarint(b, uint64(e.Expires.Unix()))
		}
		return b
	}
	t1 := time.Unix(1764633600, 0)
	f.Add(enc())
	f.Add(enc(Revoked{uuid.UUID{1}, t1}))
	f.Add(enc(Revoked{uuid.UUID{1}, t1}, Revoked{uuid.UUID{2}, t1.Add(time.Hour)}))
	f.Add(enc(Revoked{uuid.UUID{2}, t1}, Revoked{uuid.UUID{1}, t1}))       // out of order
	f.Add(enc(Revoked{uuid.UUID{1}, t1}, Revoked{uuid.UUID{1}, t1}))       // twice
	f.Add(enc(Revoked{uuid.UUID{1}, time.Unix(0, 0)}))                     // expiry 0
	f.Add(append(enc(Revoked{uuid.UUID{1}, t1}), 0))                       // trailing byte
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1}) // huge count
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got []Revoked
		n := -1
		err := decodeRevoked(raw, func(count int) { n = count }, func(id uuid.UUID, exp int64) {
			got = append(got, Revoked{id, time.Unix(exp, 0)})
		})
		if err != nil {
			return
		}
		if n != len(got) {
			t.Fatalf("announced %d entries, decoded %d", n, len(got))
		}
		if again := enc(got...); !bytes.Equal(again, raw) {
			t.Fatalf("accepted a non-canonical list:\n in  %x\n out %x", raw, again)
		}
	})
}

// FuzzDecodeCutoffs checks the binary cutoff list as FuzzDecodeRevoked
// does the revoked list: no panic, and only canonical lists accepted.
func FuzzDecodeCutoffs(f *testing.F) {
	enc := func(cs ...Cutoff) []byte {
		b := binary.AppendUvarint(nil, uint64(len(cs)))
		for _, c := range cs {
			b = append(b, c.Subject[:]...)
			b = binary.AppendUvarint(b, uint64(c.At.Unix()))
			b = binary.AppendUvarint(b, uint64(c.Expires.Unix()))
		}
		return b
	}
	t1 := time.Unix(1764633600, 0)
	f.Add(enc())
	f.Add(enc(Cutoff{[32]byte{1}, t1, t1.Add(time.Hour)}))
	f.Add(enc(Cutoff{[32]byte{1}, time.Unix(0, 0), t1}, Cutoff{[32]byte{2}, t1, t1.Add(time.Hour)}))
	f.Add(enc(Cutoff{[32]byte{2}, t1, t1}, Cutoff{[32]byte{1}, t1, t1})) // out of order
	f.Add(enc(Cutoff{[32]byte{1}, t1, t1}, Cutoff{[32]byte{1}, t1, t1})) // twice
	f.Add(enc(Cutoff{[32]byte{1}, t1, time.Unix(0, 0)}))                 // expiry 0
	f.Add(append(enc(Cutoff{[32]byte{1}, t1, t1}), 0))                   // trailing byte
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := decodeCutoffs(raw)
		if err != nil {
			return
		}
		if again := enc(got...); !bytes.Equal(again, raw) {
			t.Fatalf("accepted a non-canonical list:\n in  %x\n out %x", raw, again)
		}
	})
}
