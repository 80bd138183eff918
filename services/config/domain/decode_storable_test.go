package domain

import "testing"

// Strings PostgreSQL cannot store (NUL in text, \u0000 and a lone
// surrogate escape in jsonb) are a 400 naming the field, found by
// FuzzDecodeBody, instead of a 500 from the INSERT.
func TestDecodeRefusesWhatCannotBeStoredNamingTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{"image":"x\u0000y"}`:                                     "image",
		`{"run_config":{"environment":{"A":"\ud800"}}}`:            "run_config.environment.A",
		`{"include_labels":["ok","\udc00x"]}`:                      "include_labels[1]",
		`{"volume_mappings":{"/a\u0000":{"bind":"/b"}}}`:           `volume_mappings./a\u0000`,
		`{"run_config":{"labels":{"a":"\ud83d\ud83d"}}}`:           "run_config.labels.a",
		`{"docker_exec_config":{"assign":{"cmd":["a","\u0000"]}}}`: "docker_exec_config.assign.cmd[1]",
	} {
		var in WorkspaceUpdate
		errs := Decode([]byte(body), &in, "")
		if len(errs) != 1 || errs[0].Field != field {
			t.Errorf("%s: errors %v, want one on %q", body, errs, field)
		}
	}
	for _, body := range []string{`{"image":"x\\u0000y"}`, `{"image":"\ud83d\ude00 \ufffd"}`, `{"run_config":{"labels":{"a":"\\ud800"}}}`} {
		var in WorkspaceUpdate
		if errs := Decode([]byte(body), &in, ""); len(errs) > 0 {
			t.Errorf("%s: %v", body, errs)
		}
	}
	var in WorkspaceUpdate
	if errs := Decode([]byte(`{"":null}`), &in, ""); len(errs) != 1 || errs[0].Field != `""` {
		t.Errorf(`{"":null}: errors %v, want one naming the empty key`, errs)
	}
}

// The gateway reads an unbracketed IPv6 upstream_auth_address as another
// host and port (FuzzDecodeBody's seed): it needs brackets.
func TestAnIPv6UpstreamAuthAddressNeedsBrackets(t *testing.T) {
	for addr, want := range map[string]bool{
		"fe80::1": false, "::1": false, "[fe80::1]:8080": true, "http://[::1]:8080": true, "10.0.0.5": true, "10.0.0.5:8080": true,
		"config.internal": true,
	} {
		if got := validAuthAddress(addr); got != want {
			t.Errorf("validAuthAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}
