package rfc2136_test

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/dns/rfc2136"
)

const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=" // base64

func TestConfigValidate(t *testing.T) {
	valid := rfc2136.Config{
		Server:      "ns1.example.com:53",
		Zone:        "agents.example.com",
		TSIGKeyName: "greenroom",
		TSIGSecret:  secret,
	}
	for _, tc := range []struct {
		name   string
		change func(*rfc2136.Config)
		fields []string // the fields named, in order; none: valid
	}{
		{"valid", func(*rfc2136.Config) {}, nil},
		{"valid, unsigned", func(c *rfc2136.Config) { c.TSIGKeyName, c.TSIGSecret = "", "" }, nil},
		{"valid, everything set", func(c *rfc2136.Config) {
			c.Server, c.Zone, c.TTL, c.TSIGAlgorithm = "[::1]:5353", "Agents.Example.COM.", 3600, "HMAC-SHA512."
		}, nil},
		{"missing server", func(c *rfc2136.Config) { c.Server = "" }, []string{"server"}},
		{"server without a port", func(c *rfc2136.Config) { c.Server = "ns1.example.com" }, []string{"server"}},
		{"server with port 0", func(c *rfc2136.Config) { c.Server = "ns1.example.com:0" }, []string{"server"}},
		{"server without a host", func(c *rfc2136.Config) { c.Server = ":53" }, []string{"server"}},
		{"missing zone", func(c *rfc2136.Config) { c.Zone = "" }, []string{"zone"}},
		{"root zone", func(c *rfc2136.Config) { c.Zone = "." }, []string{"zone"}},
		{"zone with an underscore", func(c *rfc2136.Config) { c.Zone = "agents_pool.example.com" }, []string{"zone"}},
		{"zone with an empty label", func(c *rfc2136.Config) { c.Zone = "agents..example.com" }, []string{"zone"}},
		{"negative ttl", func(c *rfc2136.Config) { c.TTL = -1 }, []string{"ttl"}},
		{"ttl over 2^31-1", func(c *rfc2136.Config) { c.TTL = 1 << 31 }, []string{"ttl"}},
		{"secret not base64", func(c *rfc2136.Config) { c.TSIGSecret = "not base64!" }, []string{"tsig_secret"}},
		{"key name without secret", func(c *rfc2136.Config) { c.TSIGSecret = "" }, []string{"tsig_secret"}},
		{"secret without key name", func(c *rfc2136.Config) { c.TSIGKeyName = "" }, []string{"tsig_key_name"}},
		{"bad key name", func(c *rfc2136.Config) { c.TSIGKeyName = "green room" }, []string{"tsig_key_name"}},
		{"hmac-md5", func(c *rfc2136.Config) { c.TSIGAlgorithm = "hmac-md5" }, []string{"tsig_algorithm"}},
		{"empty", func(c *rfc2136.Config) { *c = rfc2136.Config{} }, []string{"server", "zone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.change(&c)
			err := c.Validate()
			if _, newErr := rfc2136.New(c); (err == nil) != (newErr == nil) {
				t.Errorf("Validate: %v but New: %v", err, newErr)
			}
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("Validate(%v): %v", c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%v): nil, want an error naming %v", c, tc.fields)
			}
			var fields []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ce *rfc2136.ConfigError
				if !errors.As(e, &ce) {
					t.Fatalf("%v is not a *ConfigError", e)
				}
				fields = append(fields, ce.Field)
				if !strings.Contains(e.Error(), ce.Field+":") {
					t.Errorf("%q does not name %s", e, ce.Field)
				}
			}
			if !slices.Equal(fields, tc.fields) {
				t.Errorf("Validate(%v) named %v, want %v: %v", c, fields, tc.fields, err)
			}
			if c.TSIGSecret != "" && strings.Contains(err.Error(), c.TSIGSecret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestConfigCanonical(t *testing.T) {
	cl, err := rfc2136.New(rfc2136.Config{Server: "127.0.0.1:53", Zone: "Agents.Example.COM"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cl.Zone(); got != "agents.example.com." {
		t.Errorf("Zone() = %q, want agents.example.com.", got)
	}
}

// The JSON names are the provider's settings in the admin API.
func TestConfigJSON(t *testing.T) {
	b, err := json.Marshal(rfc2136.Config{Server: "ns1.example.com:53", TSIGSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"server", "tsig_algorithm", "tsig_key_name", "tsig_secret", "ttl", "zone"}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, want) {
		t.Errorf("JSON fields %v, want %v", got, want)
	}

	c := rfc2136.Config{Server: "ns1.example.com:53", Zone: "agents.example.com", TSIGKeyName: "k", TSIGSecret: secret}
	if s := c.String(); strings.Contains(s, secret) || !strings.Contains(s, "ns1.example.com:53") {
		t.Errorf("String() = %q: shows the secret, or not the server", s)
	}
}
