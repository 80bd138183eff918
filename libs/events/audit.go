package events

// AuditCheckpoint is the payload of greenroom.audit.checkpoint: the audit
// notary (libs/audit) covered the stream sequences FirstSeq..LastSeq (but
// Missing) with one 8-byte digest per event (Digests, base64) and a SHA-256
// hash chain over them that continues PrevChain, the previous checkpoint's.
type AuditCheckpoint struct {
	Checkpoint int64   `json:"checkpoint"`
	FirstSeq   uint64  `json:"first_seq"`
	LastSeq    uint64  `json:"last_seq"`
	Events     int     `json:"events"`
	Missing    []int64 `json:"missing,omitempty"`
	Digests    string  `json:"digests,omitempty"`
	PrevChain  string  `json:"prev_chain"`
	Chain      string  `json:"chain"`
}
