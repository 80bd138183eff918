package signin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/signin"
)

func TestPasswordsAreStoredHashedAndChecked(t *testing.T) {
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	if _, err := signin.HashPassword("short"); err == nil {
		t.Fatal("a 5-character password was accepted")
	}
	h, err := signin.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "correct horse") || !strings.HasPrefix(h, "$2") {
		t.Fatalf("stored %q, want a bcrypt hash", h)
	}
	id := uuid.NewString()
	conn.MustExec(`INSERT INTO users (id, username, password_hash) VALUES ($1, 'alice', $2)`, id, h)
	conn.MustExec(`INSERT INTO users (id, username) VALUES ($1, 'bob')`, uuid.NewString())

	if u, err := signin.CheckPassword(ctx, conn, "alice", "correct horse"); err != nil || u.ID != id || u.Name != "alice" {
		t.Fatalf("alice with her password: %+v %v", u, err)
	}
	for _, tc := range []struct{ user, password string }{
		{"alice", "wrong horse"}, {"bob", "anything at all"}, {"carol", "correct horse"},
	} {
		if _, err := signin.CheckPassword(ctx, conn, tc.user, tc.password); !errors.Is(err, signin.ErrBadCredentials) {
			t.Errorf("%s/%s: %v, want ErrBadCredentials", tc.user, tc.password, err)
		}
	}
}

func TestASignInIsFoundByItsTokenUntilItExpiresOrEnds(t *testing.T) {
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	id := uuid.NewString()
	conn.MustExec(`INSERT INTO users (id, username) VALUES ($1, 'alice')`, id)

	token, _, err := signin.Create(ctx, conn, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	conn.Get(&stored, `SELECT count(*) FROM sign_ins WHERE token_hash = convert_to($1, 'UTF8')`, token)
	if stored != 0 {
		t.Fatal("the token itself is stored")
	}
	if u, err := signin.Lookup(ctx, conn, token); err != nil || u.Name != "alice" {
		t.Fatalf("Lookup: %+v %v", u, err)
	}
	if _, err := signin.Lookup(ctx, conn, token+"x"); !errors.Is(err, signin.ErrUnknownToken) {
		t.Fatalf("another token: %v", err)
	}
	expired, _, err := signin.Create(ctx, conn, id, -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signin.Lookup(ctx, conn, expired); !errors.Is(err, signin.ErrUnknownToken) {
		t.Fatalf("an expired sign-in: %v", err)
	}
	if err := signin.Delete(ctx, conn, token); err != nil {
		t.Fatal(err)
	}
	if _, err := signin.Lookup(ctx, conn, token); !errors.Is(err, signin.ErrUnknownToken) {
		t.Fatalf("after sign-out: %v", err)
	}
	var left int
	conn.Get(&left, `SELECT count(*) FROM sign_ins`)
	if left != 0 {
		t.Fatalf("%d sign-ins left after sign-out, want the expired one gone too", left)
	}
}

func TestChangingAPasswordEndsTheUsersSignIns(t *testing.T) {
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	alice, bob := uuid.NewString(), uuid.NewString()
	conn.MustExec(`INSERT INTO users (id, username) VALUES ($1, 'alice'), ($2, 'bob')`, alice, bob)
	aliceToken, _, _ := signin.Create(ctx, conn, alice, time.Hour)
	bobToken, _, _ := signin.Create(ctx, conn, bob, time.Hour)
	h, _ := signin.HashPassword("a new password")
	if err := signin.SetPassword(ctx, conn, alice, &h); err != nil {
		t.Fatal(err)
	}
	if _, err := signin.Lookup(ctx, conn, aliceToken); !errors.Is(err, signin.ErrUnknownToken) {
		t.Errorf("alice's sign-in after her password changed: %v, want ErrUnknownToken", err)
	}
	if _, err := signin.Lookup(ctx, conn, bobToken); err != nil {
		t.Errorf("bob's sign-in: %v", err)
	}
	if _, err := signin.CheckPassword(ctx, conn, "alice", "a new password"); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if err := signin.SetPassword(ctx, conn, alice, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := signin.CheckPassword(ctx, conn, "alice", "a new password"); !errors.Is(err, signin.ErrBadCredentials) {
		t.Errorf("a removed password: %v", err)
	}
}
