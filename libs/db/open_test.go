package db

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAMalformedDatabaseURLIsReportedWithoutItsPassword(t *testing.T) {
	_, err := Open(context.Background(), "postgres://greenroom:hunter2@db.internal:54x32/greenroom", time.Second)
	if err == nil {
		t.Fatal("a malformed URL was accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error quotes the password: %v", err)
	}
	if !strings.Contains(err.Error(), "parsing database URL") {
		t.Fatalf("error %v does not say what was wrong", err)
	}
}
