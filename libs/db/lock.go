package db

import (
	"fmt"

	"github.com/pressly/goose/v3/lock"
)

func lockerFor() (lock.SessionLocker, error) {
	l, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("creating migration lock: %w", err)
	}
	return l, nil
}
