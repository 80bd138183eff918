package main

import (
	"fmt"
	"io"
	"time"
)

// runAssign is the Docker exec "assign" hook: Greenroom runs it inside the
// staged container when it hands the session to a user. The workspace's
// docker_exec_config may pass the user as flags or, through its environment,
// as GREENROOM_USER / GREENROOM_USER_ID; flags win. The HTTP assign hook
// (POST /.greenroom/assign, see serve.go) records the same thing through
// recordAssignment.
func runAssign(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("assign", "assign --user NAME [--user-id ID]", stderr)
	user := fs.String("user", getenv("GREENROOM_USER"), "user `name` to assign the session to (default $GREENROOM_USER)")
	userID := fs.String("user-id", getenv("GREENROOM_USER_ID"), "user `id` (default $GREENROOM_USER_ID)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *user == "" {
		return usageError{"no user: pass --user NAME or set GREENROOM_USER"}
	}

	// docker exec inherits the container's environment, so this is the
	// same session id the server shows.
	path := getenvDefault(getenv, "GREENROOM_DEMO_STATE", defaultStatePath)
	st, err := recordAssignment(path, getenv("GREENROOM_SESSION_ID"), *user, *userID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "assigned session %q to user %q (id %q)\n", st.SessionID, st.User, st.UserID)
	return nil
}

// recordAssignment writes the state of a session handed to user: what both
// the exec "assign" subcommand and the HTTP assign hook record.
func recordAssignment(path, sessionID, user, userID string) (state, error) {
	now := time.Now().UTC()
	st := state{
		SessionID:  sessionID,
		User:       user,
		UserID:     userID,
		AssignedAt: &now,
	}
	return st, writeState(path, st)
}
