package domain

import "github.com/google/uuid"

// IsUUID reports whether s is a UUID in its canonical 36-character form,
// the only form ids are written in.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// NewID returns a fresh, time-ordered id for a row.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }
