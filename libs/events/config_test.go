package events_test

import (
	"encoding/json"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/events"
)

func TestRedactSecretsReplacesWhatMayHoldASecretAtAnyDepth(t *testing.T) {
	cases := []struct {
		rule, in, want string
	}{
		{"nothing to redact, compacted, members in their order",
			`{"name": "eu", "priority": 1, "labels": ["a", "b"], "z": null, "a": 1.50}`,
			`{"name":"eu","priority":1,"labels":["a","b"],"z":null,"a":1.50}`},
		{"password, secret and token, in any case and as part of a name",
			`{"password": "hunter2", "Client_SECRET": "s", "api_token": "t", "TokenId": 7, "username": "alice"}`,
			`{"password":"[redacted]","Client_SECRET":"[redacted]","api_token":"[redacted]","TokenId":"[redacted]","username":"alice"}`},
		{"nested objects and arrays",
			`{"docker_exec_config": {"assign": {"environment": {"DB_PASSWORD": "p", "MODE": "kiosk"}}}, "hooks": [{"secret": "s", "path": "/x"}]}`,
			`{"docker_exec_config":{"assign":{"environment":{"DB_PASSWORD":"[redacted]","MODE":"kiosk"}}},"hooks":[{"secret":"[redacted]","path":"/x"}]}`},
		{"a whole object or array under a secret name",
			`{"tokens": ["a", "b"], "secrets": {"x": "y"}}`,
			`{"tokens":"[redacted]","secrets":"[redacted]"}`},
		{"a boolean or null says only whether there is one",
			`{"has_password": true, "token_set": false, "secret": null}`,
			`{"has_password":true,"token_set":false,"secret":null}`},
		{"a name that only looks like a secret's value is kept",
			`{"note": "my password is hunter2"}`,
			`{"note":"my password is hunter2"}`},
		{"escaped names and strings stay as they were",
			`{"pass\u0077ord": "x", "a\"b": "<&>"}`,
			`{"password":"[redacted]","a\"b":"<&>"}`},
		{"an array at the top", `[{"token": "t"}, 1]`, `[{"token":"[redacted]"},1]`},
		{"a scalar at the top", `"token"`, `"token"`},
		{"not JSON", `{"password": `, ``},
		{"trailing data", `{} {"password": "x"}`, ``},
		{"empty", ``, ``},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			got := events.RedactSecrets(json.RawMessage(tc.in))
			if string(got) != tc.want {
				t.Errorf("RedactSecrets(%s) = %s, want %s", tc.in, got, tc.want)
			}
			if tc.want == "" && got != nil {
				t.Errorf("RedactSecrets(%s) = %q, want nil", tc.in, got)
			}
		})
	}
}
