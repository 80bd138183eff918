package rfc2136

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Defaults of the settings left out of a Config.
const (
	// TTLDefault is the TTL, in seconds, of the records Register makes:
	// short, because an agent's address goes with its machine.
	TTLDefault = 60
	// TSIGAlgorithmDefault is the TSIG algorithm when tsig_algorithm is
	// left out (BIND's tsig-keygen and Knot's keymgr default to it).
	TSIGAlgorithmDefault = "hmac-sha256"
	// ttlMax is the largest TTL DNS has (RFC 2181, section 8).
	ttlMax = 1<<31 - 1
)

// Config is a DNS provider of type rfc2136: its JSON fields are the
// provider's settings in the admin API (/api/v1/dns-providers).
// TSIGSecret is the one secret: the API takes it but never shows it.
//
// The TSIG fields go together: with tsig_key_name and tsig_secret every
// update is signed (what a primary should demand); with neither, updates
// are sent unsigned, for a primary that allows updates by address.
type Config struct {
	// Server is the primary's address, host:port ("ns1.example.com:53").
	Server string `json:"server"`
	// Zone is the zone the agents' names are made in
	// ("agents.example.com", with or without the trailing dot).
	Zone string `json:"zone"`
	// TTL is the records' TTL in seconds; 0 takes TTLDefault.
	TTL int `json:"ttl"`
	// TSIGKeyName is the name of the TSIG key, as the server knows it.
	TSIGKeyName string `json:"tsig_key_name"`
	// TSIGAlgorithm is the key's algorithm (hmac-sha1, hmac-sha224,
	// hmac-sha256, hmac-sha384 or hmac-sha512); "" takes
	// TSIGAlgorithmDefault.
	TSIGAlgorithm string `json:"tsig_algorithm"`
	// TSIGSecret is the key's secret, base64 as in named.conf.
	TSIGSecret string `json:"tsig_secret"`
}

// ConfigError is a setting of a Config that is missing or wrong. Field is
// the setting's JSON name, so that the admin API can point at it.
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string {
	return "rfc2136: " + e.Field + ": " + e.Problem
}

// Validate says what is wrong with c: every missing or wrong setting, each
// a *ConfigError naming it (errors.Join of them), or nil.
func (c Config) Validate() error {
	_, err := c.normalized()
	return err
}

// String shows c without its secret, so that a Config logged or printed
// with %v does not leak it.
func (c Config) String() string {
	if c.TSIGSecret != "" {
		c.TSIGSecret = "<redacted>"
	}
	type plain Config // without this method
	return fmt.Sprintf("%+v", plain(c))
}

// algorithms are the TSIG algorithms a Config may name, by their names
// without the trailing dot. HMAC-MD5 is not one: RFC 8945 deprecates it
// and miekg/dns no longer signs with it.
var algorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// normalized is c checked and in canonical form: the zone and the key name
// lower-case and fully qualified, the TTL and the algorithm defaulted, the
// algorithm as miekg/dns names it.
func (c Config) normalized() (Config, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}

	if c.Server == "" {
		bad("server", "required: the primary's host:port, e.g. ns1.example.com:53")
	} else if host, port, err := net.SplitHostPort(c.Server); err != nil || host == "" {
		bad("server", "%q is not host:port, e.g. ns1.example.com:53", c.Server)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		bad("server", "%q has no port between 1 and 65535", c.Server)
	}

	if c.Zone == "" {
		bad("zone", "required: the zone the agents' names are made in, e.g. agents.example.com")
	} else if zone, err := canonicalName(c.Zone); err != nil {
		bad("zone", "%v", err)
	} else {
		c.Zone = zone
	}

	switch {
	case c.TTL == 0:
		c.TTL = TTLDefault
	case c.TTL < 0 || c.TTL > ttlMax:
		bad("ttl", "%d is not a TTL in seconds between 1 and %d", c.TTL, ttlMax)
	}

	if c.TSIGKeyName != "" {
		if name, err := canonicalName(c.TSIGKeyName); err != nil {
			bad("tsig_key_name", "%v", err)
		} else {
			c.TSIGKeyName = name
		}
	}
	if c.TSIGAlgorithm == "" {
		c.TSIGAlgorithm = TSIGAlgorithmDefault
	}
	if alg, ok := algorithms[strings.TrimSuffix(strings.ToLower(c.TSIGAlgorithm), ".")]; ok {
		c.TSIGAlgorithm = alg
	} else {
		bad("tsig_algorithm", "%q is not one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512", c.TSIGAlgorithm)
	}
	if c.TSIGSecret != "" {
		// The secret itself never goes into the error: it may be a real
		// key with a typo.
		if raw, err := base64.StdEncoding.DecodeString(c.TSIGSecret); err != nil {
			bad("tsig_secret", "not base64 (as in named.conf's secret \"...\";)")
		} else if len(raw) == 0 {
			bad("tsig_secret", "empty")
		}
	}
	switch {
	case c.TSIGKeyName != "" && c.TSIGSecret == "":
		bad("tsig_secret", "required with tsig_key_name")
	case c.TSIGKeyName == "" && c.TSIGSecret != "":
		bad("tsig_key_name", "required with tsig_secret")
	}

	return c, errors.Join(errs...)
}

// label is a host name's label (RFC 1123): letters, digits and hyphens,
// neither first nor last a hyphen, at most 63, lower-case here.
var label = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// canonicalName is name lower-case and fully qualified, every label a
// host name's label; the root is refused.
func canonicalName(name string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(name), ".")
	if n == "" {
		return "", fmt.Errorf("%q is not a domain name", name)
	}
	if len(n) > 253 {
		return "", fmt.Errorf("%q is longer than 253 characters", name)
	}
	for l := range strings.SplitSeq(n, ".") {
		if !label.MatchString(l) {
			return "", fmt.Errorf("%q is not a domain name: label %q is not letters, digits and inner hyphens, 1 to 63 of them", name, l)
		}
	}
	return n + ".", nil
}
