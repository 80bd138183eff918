package settings

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

func newFlagSet(out *bytes.Buffer) (*flag.FlagSet, *Common, *time.Duration, *int) {
	fs := flag.NewFlagSet("greenroom-test", flag.ContinueOnError)
	fs.SetOutput(out)
	var c Common
	c.Register(fs, HTTPAddrDefault)
	var interval time.Duration
	var n int
	Duration(fs, &interval, "GREENROOM_EXPIRY_INTERVAL", time.Second, "sweep period")
	Int(fs, &n, "GREENROOM_EXPIRY_BATCH_SIZE", 100, "rows per pass")
	fs.Usage = Usage(fs, "greenroom-test", "A test service.")
	return fs, &c, &interval, &n
}

func TestSecretsFromTheEnvironmentNeverAppearInHelp(t *testing.T) {
	t.Setenv("GREENROOM_ADMIN_TOKEN", "s3cr3t-token")
	t.Setenv("GREENROOM_DATABASE_URL", "postgres://greenroom:hunter2@db.internal:5432/greenroom")
	var out bytes.Buffer
	fs, _, _, _ := newFlagSet(&out)
	if err := Parse(fs, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	help := out.String()
	for _, secret := range []string{"s3cr3t-token", "hunter2", ":greenroom@"} {
		if strings.Contains(help, secret) {
			t.Errorf("--help shows %q:\n%s", secret, help)
		}
	}
	// The built-in default has no password (the local one is generated).
	for _, want := range []string{"GREENROOM_ADMIN_TOKEN", "GREENROOM_DATABASE_URL", "postgres://greenroom@127.0.0.1:5432"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q:\n%s", want, help)
		}
	}

	// The values still reach the code.
	out.Reset()
	fs, c, _, _ := newFlagSet(&out)
	if err := Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "s3cr3t-token" || c.DatabaseURL != "postgres://greenroom:hunter2@db.internal:5432/greenroom" {
		t.Errorf("settings from the environment: token %q, database URL %q", c.AdminToken, c.DatabaseURL)
	}
	if Redact(c.DatabaseURL) != "postgres://greenroom:xxxxx@db.internal:5432/greenroom" {
		t.Errorf("Redact = %q", Redact(c.DatabaseURL))
	}
}

func TestMalformedValueIsAStartupErrorNamingTheVariable(t *testing.T) {
	for _, tt := range []struct{ env, value string }{
		{"GREENROOM_EXPIRY_INTERVAL", "soon"},
		{"GREENROOM_EXPIRY_BATCH_SIZE", "12abc"},
		{"GREENROOM_STREAM_REPLICAS", "three"},
		{"GREENROOM_SHUTDOWN_TIMEOUT", "20"},
	} {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			var out bytes.Buffer
			fs, _, _, _ := newFlagSet(&out)
			err := Parse(fs, nil)
			if err == nil || !strings.Contains(err.Error(), tt.env) {
				t.Fatalf("%s=%s: error %v, want one naming %s", tt.env, tt.value, err, tt.env)
			}
		})
	}
}

func TestTheFlagWinsOverTheVariable(t *testing.T) {
	t.Setenv("GREENROOM_EXPIRY_INTERVAL", "5s")
	t.Setenv("GREENROOM_EXPIRY_BATCH_SIZE", "7")
	var out bytes.Buffer
	fs, _, interval, n := newFlagSet(&out)
	if err := Parse(fs, []string{"--expiry-interval", "2s"}); err != nil {
		t.Fatal(err)
	}
	if *interval != 2*time.Second || *n != 7 {
		t.Errorf("interval %s (flag 2s over env 5s), batch %d (env 7)", *interval, *n)
	}
}

func TestFromEnvFillsWhatTheCommandLineDidNotGive(t *testing.T) {
	env := map[string]string{"GREENROOM_NATS_URL": "nats://env:4222", "GREENROOM_API_URL": "http://env:8080"}
	nats, api, token := "nats://default:4222", "http://flag:8080", "default-token"
	FromEnv(func(k string) string { return env[k] }, func(name string) bool { return name == "api-url" },
		map[string]*string{"nats-url": &nats, "api-url": &api, "admin-token": &token})
	if nats != "nats://env:4222" || api != "http://flag:8080" || token != "default-token" {
		t.Errorf("nats %q (from env), api %q (the flag wins), token %q (no env: kept)", nats, api, token)
	}
	if EnvName("database-url") != "GREENROOM_DATABASE_URL" || FlagName(EnvName("database-url")) != "database-url" {
		t.Errorf("EnvName/FlagName do not round-trip: %q", EnvName("database-url"))
	}
}

func TestWebURLIsAnHTTPURLOrAStartupError(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"https://desktops.example.com", true}, {"http://127.0.0.1:8090", true},
		{"127.0.0.1:8090", false}, {"ftp://x", false}, {"http://", false},
	} {
		t.Setenv("GREENROOM_GATEWAY_URL", tc.value)
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var u *url.URL
		WebURL(fs, &u, "GREENROOM_GATEWAY_URL", "http://127.0.0.1:8090", "the gateway")
		err := Parse(fs, nil)
		switch {
		case tc.ok && (err != nil || u.String() != tc.value):
			t.Errorf("%q: %v, %v", tc.value, u, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "GREENROOM_GATEWAY_URL")):
			t.Errorf("%q: error %v, want one naming GREENROOM_GATEWAY_URL", tc.value, err)
		}
	}
}
