package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/greenroom-dev/greenroom/libs/events"
)

func TestRenderAssignSubstitutesTokens(t *testing.T) {
	t.Parallel()
	tokens := Tokens{Username: "alice", UserID: "u-42", SessionID: "s-7"}
	baseEnv := []string{"GREENROOM_SESSION_ID=s-7", "GREENROOM_USER=alice", "GREENROOM_USER_ID=u-42"}
	tests := []struct {
		name string
		raw  string
		want ExecSpec
	}{
		{
			name: "string cmd is split like a shell, tokens substituted per argument",
			raw:  `{"assign": {"cmd": "/demo-workspace assign --user {username} --user-id '{user_id}'"}}`,
			want: ExecSpec{Cmd: []string{"/demo-workspace", "assign", "--user", "alice", "--user-id", "u-42"}, Env: baseEnv},
		},
		{
			name: "array cmd, user, privileged, workdir and environment",
			raw: `{"assign": {"cmd": ["sh", "-c", "echo {username} > /home/{username}/owner"], "user": "root", "privileged": true,
				"workdir": "/home/{username}", "environment": {"OWNER": "{username}:{user_id}", "LEVEL": 3, "GREENROOM_USER": "mallory"}}}`,
			want: ExecSpec{
				Cmd: []string{"sh", "-c", "echo alice > /home/alice/owner"}, User: "root", Privileged: true, Workdir: "/home/alice",
				Env: []string{"GREENROOM_SESSION_ID=s-7", "GREENROOM_USER=alice", "GREENROOM_USER_ID=u-42", "LEVEL=3", "OWNER=alice:u-42"},
			},
		},
		{
			name: "session id token and unknown tokens left alone",
			raw:  `{"assign": {"cmd": ["tag", "{session_id}", "{other}"]}, "first_launch": {"cmd": "ignored"}}`,
			want: ExecSpec{Cmd: []string{"tag", "s-7", "{other}"}, Env: baseEnv},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseExecConfig([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := RenderAssign(cfg, tokens)
			if !ok {
				t.Fatal("RenderAssign found no assign command")
			}
			if !slices.Equal(got.Cmd, tt.want.Cmd) || got.User != tt.want.User || got.Privileged != tt.want.Privileged ||
				got.Workdir != tt.want.Workdir || !slices.Equal(got.Env, tt.want.Env) {
				t.Errorf("RenderAssign\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUsernameCannotInjectArguments(t *testing.T) {
	t.Parallel()
	cfg, err := ParseExecConfig([]byte(`{"assign": {"cmd": "/demo-workspace assign --user {username}"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := RenderAssign(cfg, Tokens{Username: `bob --user-id 0 'x"`})
	want := []string{"/demo-workspace", "assign", "--user", `bob --user-id 0 'x"`}
	if !slices.Equal(got.Cmd, want) {
		t.Errorf("cmd = %q, want %q", got.Cmd, want)
	}
}

func TestNoAssignCommand(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{``, `{}`, `{"first_launch": {"cmd": "x"}}`, `{"assign": null}`} {
		cfg, err := ParseExecConfig([]byte(raw))
		if err != nil {
			t.Errorf("ParseExecConfig(%q): %v", raw, err)
			continue
		}
		if _, ok := RenderAssign(cfg, Tokens{}); ok {
			t.Errorf("ParseExecConfig(%q) has an assign command", raw)
		}
	}
}

func TestInvalidExecConfig(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"assign": {}}`,
		`{"assign": {"cmd": ""}}`,
		`{"assign": {"cmd": []}}`,
		`{"assign": {"cmd": 5}}`,
		`{"assign": {"cmd": "echo 'unterminated"}}`,
		`{"assign": {"cmd": "x", "environment": {"A": [1]}}}`,
		`not json`,
	} {
		if _, err := ParseExecConfig([]byte(raw)); !errors.Is(err, ErrInvalidExecConfig) {
			t.Errorf("ParseExecConfig(%s) error = %v, want ErrInvalidExecConfig", raw, err)
		}
	}
}

func TestAssignDetailIsOneLineOfAtMostTheSchemasLength(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", events.AssignDetailMaxLength+10)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"output kept as it is", "assigned to alice", "assigned to alice"},
		{"lines and control characters become spaces", "line 1\r\nline\x002\t\x1b[0m done\n", "line 1 line 2 [0m done"},
		{"invalid UTF-8 is replaced", "ok \xff", "ok \uFFFD"},
		{"nothing to say", " \n ", ""},
		{"the first characters of a long answer", long, strings.Repeat("é", events.AssignDetailMaxLength-1) + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AssignDetail(tc.in)
			if got != tc.want {
				t.Errorf("AssignDetail(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if n := utf8.RuneCountInString(got); n > events.AssignDetailMaxLength || !utf8.ValidString(got) {
				t.Errorf("%d characters, valid UTF-8 %v", n, utf8.ValidString(got))
			}
		})
	}
}
