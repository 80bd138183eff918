// Package audit reads the GREENROOM stream back as the audit log: it
// rebuilds from the events alone the sessions and requests they describe
// (Rebuild), compares that with PostgreSQL, and keeps the log tamper
// evident with checkpoints (Notary) that verify recomputes (CheckChain).
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/nats-io/nats.go"
)

// DigestSize is the size of an event's digest in a checkpoint: the first 8
// bytes of a SHA-256. Forging an event with the digest of another takes
// about 2⁶⁴ hash computations; 8 bytes keep the checkpoints at 8 bytes per
// event.
const DigestSize = 8

// Digest is what a checkpoint records of one event.
type Digest [DigestSize]byte

// DigestOf is the digest of a stored event: SHA-256 of its subject, its
// headers (sorted, every value) and its payload, each length-prefixed so
// that no two different events encode alike. The stream sequence and the
// time the server stored it are left out: the CloudEvents time inside the
// payload is covered, and an event's digest stays the same if the stream is
// rebuilt around it, so that verify can name exactly what was removed or
// altered instead of everything after it.
func DigestOf(subject string, h nats.Header, payload []byte) Digest {
	s := sha256.New()
	var n [binary.MaxVarintLen64]byte
	put := func(b []byte) {
		s.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
		s.Write(b)
	}
	put([]byte(subject))
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s.Write(n[:binary.PutUvarint(n[:], uint64(len(keys)))])
	for _, k := range keys {
		put([]byte(k))
		s.Write(n[:binary.PutUvarint(n[:], uint64(len(h[k])))])
		for _, v := range h[k] {
			put([]byte(v))
		}
	}
	put(payload)
	var d Digest
	copy(d[:], s.Sum(nil))
	return d
}

// GenesisChain is the chain value before the first checkpoint.
var GenesisChain = hex.EncodeToString(make([]byte, sha256.Size))

// Chain continues the hash chain prev (hex) over a checkpoint: h =
// SHA-256(prev || header), then for each digest d, h = SHA-256(h || d). It
// returns the hex of h, or an error when prev is not hex of 32 bytes.
func Chain(prev, header string, digests []Digest) (string, error) {
	h, err := hex.DecodeString(prev)
	if err != nil || len(h) != sha256.Size {
		return "", errBadChain(prev)
	}
	s := sha256.New()
	s.Write(h)
	s.Write([]byte(header))
	h = s.Sum(h[:0])
	for _, d := range digests {
		s.Reset()
		s.Write(h)
		s.Write(d[:])
		h = s.Sum(h[:0])
	}
	return hex.EncodeToString(h), nil
}

type errBadChain string

func (e errBadChain) Error() string { return "chain value " + string(e) + " is not 64 hex digits" }

// packDigests and unpackDigests convert digests to and from their stored
// form, DigestSize bytes each in order.
func packDigests(ds []Digest) []byte {
	b := make([]byte, 0, len(ds)*DigestSize)
	for _, d := range ds {
		b = append(b, d[:]...)
	}
	return b
}

func unpackDigests(b []byte) ([]Digest, bool) {
	if len(b)%DigestSize != 0 {
		return nil, false
	}
	ds := make([]Digest, len(b)/DigestSize)
	for i := range ds {
		copy(ds[i][:], b[i*DigestSize:])
	}
	return ds, true
}
