package domain

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// VM provider types and DNS provider types.
const (
	VMProviderLocalDocker  = "local_docker"
	VMProviderDigitalOcean = "digitalocean"
	DNSProviderRFC2136     = "rfc2136"
)

// settingKind is the JSON type one setting of a provider type takes.
type settingKind int

const (
	settingString settingKind = iota
	settingNumber             // a number greater than 0
	settingCount              // a whole number, 0 or more
	settingBool
	settingStrings   // a list of strings
	settingDuration  // a Go duration string ("10m")
	settingHostPort  // host:port
	settingEndpoint  // a Docker endpoint: unix:// or tcp://
	settingBase64    // base64 text (a TSIG secret)
	settingDNSDomain // a domain name, with or without the final dot
	settingImage     // a Docker image reference
	settingNetwork   // a Docker network name
	settingAPIURL    // an https URL (http to a loopback address only: a stand-in)
	settingUUID      // a UUID
	settingTags      // a list of DigitalOcean tags
)

// setting is one setting (or secret) of a provider type.
type setting struct {
	key      string
	kind     settingKind
	required bool
	// min, when set, is the least a number may be; oneOf, when set, the
	// values a string may take.
	min   float64
	oneOf []string
}

// providerType is what a provider of one type is configured with: its
// settings, shown by the API, and its secrets, written and never shown;
// where are the settings that say where its machines or records are, which
// cannot change while it has some (they would be left behind). The
// provisioner's adapter of the type checks them again when it builds the
// provider (services/provisioner/adapters/vm, adapters/dns), with the same
// keys.
type providerType struct {
	settings []setting
	secrets  []setting
	where    []string
}

// vmProviderTypes are the VM provider types and what each is configured
// with.
var vmProviderTypes = map[string]providerType{
	// Machines are containers running dockerd on a Docker Engine of this
	// machine (the image scripts/build-agent-image.sh builds).
	VMProviderLocalDocker: {settings: []setting{
		{key: "docker_endpoint", kind: settingEndpoint},
		{key: "image", kind: settingImage},
		{key: "network", kind: settingNetwork},
		{key: "cores", kind: settingNumber, min: 0.01},
		{key: "memory_mb", kind: settingCount, min: 256},
	}, where: []string{"docker_endpoint", "network"}},
	// Droplets that start Debian's Docker Engine from cloud-init user data.
	VMProviderDigitalOcean: {
		settings: []setting{
			{key: "api_url", kind: settingAPIURL},
			{key: "region", kind: settingString, required: true},
			{key: "size", kind: settingString, required: true},
			{key: "image", kind: settingString},
			{key: "ssh_keys", kind: settingStrings},
			{key: "vpc_uuid", kind: settingUUID},
			{key: "tags", kind: settingTags},
			{key: "cores", kind: settingNumber, required: true},
			{key: "memory_mb", kind: settingCount, required: true},
			{key: "gpus", kind: settingCount},
			{key: "use_private_address", kind: settingBool},
			{key: "boot_timeout", kind: settingDuration},
		},
		secrets: []setting{{key: "token", kind: settingString, required: true}},
		where:   []string{"api_url", "region"},
	},
}

// dnsProviderTypes are the DNS provider types and what each is configured
// with.
var dnsProviderTypes = map[string]providerType{
	// RFC 2136 dynamic updates, signed with a TSIG key, to the zone's
	// primary server (BIND, Knot, PowerDNS...).
	DNSProviderRFC2136: {
		settings: []setting{
			{key: "server", kind: settingHostPort, required: true},
			{key: "zone", kind: settingDNSDomain, required: true},
			{key: "ttl", kind: settingCount, min: 1},
			{key: "tsig_key_name", kind: settingDNSDomain},
			{key: "tsig_algorithm", kind: settingString,
				oneOf: []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}},
		},
		secrets: []setting{{key: "tsig_secret", kind: settingBase64}},
		where:   []string{"server", "zone"},
	},
}

// typeNames lists the types of a table, sorted.
func typeNames(types map[string]providerType) []string {
	return slices.Sorted(maps.Keys(types))
}

// checkSettings records a problem for each setting of obj (under field)
// that type t does not have, that has the wrong JSON type, or that is
// required and missing.
func checkSettings(errs *FieldErrors, field string, obj map[string]json.RawMessage, known []setting, requireAll bool) {
	byKey := map[string]setting{}
	for _, s := range known {
		byKey[s.key] = s
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		s, ok := byKey[k]
		if !ok {
			names := make([]string, len(known))
			for i, s := range known {
				names[i] = s.key
			}
			if len(names) == 0 {
				errs.Add(field+"."+k, "this type has no %s", field)
				continue
			}
			errs.Add(field+"."+k, "is not a setting of this type; it has %s", strings.Join(names, ", "))
			continue
		}
		if problem := s.check(obj[k]); problem != "" {
			errs.Add(field+"."+k, "%s", problem)
		}
	}
	if requireAll {
		for _, s := range known {
			if _, ok := obj[s.key]; s.required && !ok {
				errs.Add(field+"."+s.key, "is required")
			}
		}
	}
}

// check says what is wrong with raw as the value of s ("" when nothing).
func (s setting) check(raw json.RawMessage) string {
	if string(raw) == "null" {
		if s.required {
			return "is required"
		}
		return ""
	}
	switch s.kind {
	case settingNumber:
		var f float64
		if json.Unmarshal(raw, &f) != nil || f <= 0 {
			return "must be a number greater than 0"
		}
		if f < s.min {
			return fmt.Sprintf("must be at least %g", s.min)
		}
	case settingCount:
		var n int64
		if json.Unmarshal(raw, &n) != nil || n < 0 || n > 1<<31-1 {
			return "must be a whole number, 0 or more"
		}
		if float64(n) < s.min {
			return fmt.Sprintf("must be at least %g", s.min)
		}
	case settingTags:
		var l []string
		if json.Unmarshal(raw, &l) != nil {
			return "must be a list of strings"
		}
		for _, t := range l {
			if !doTag.MatchString(t) {
				return fmt.Sprintf("%q may have only letters, digits, colons, dashes and underscores", t)
			}
		}
	case settingBool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return "must be true or false"
		}
	case settingStrings:
		var l []string
		if json.Unmarshal(raw, &l) != nil {
			return "must be a list of strings"
		}
	default:
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "must be a string"
		}
		return s.checkString(v)
	}
	return ""
}

// checkString checks a string setting's value.
func (s setting) checkString(v string) string {
	if v == "" {
		if s.required {
			return "must not be empty"
		}
		return ""
	}
	if len(s.oneOf) > 0 && !slices.Contains(s.oneOf, strings.ToLower(strings.TrimSuffix(v, "."))) {
		return fmt.Sprintf("%q is not one of %s", v, strings.Join(s.oneOf, ", "))
	}
	switch s.kind {
	case settingImage:
		if !dockerImage.MatchString(v) || strings.HasSuffix(v, ":") || strings.Contains(v, "//") {
			return fmt.Sprintf("%q is not an image reference (name[:tag])", v)
		}
	case settingNetwork:
		if !dockerName.MatchString(v) {
			return fmt.Sprintf("%q is not a Docker network name (letters, digits, '_', '.', '-')", v)
		}
	case settingAPIURL:
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			return fmt.Sprintf("%q is not an https URL", v)
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			return fmt.Sprintf("%q must be https (the token goes in every request; plain http only to a loopback address)", v)
		}
	case settingUUID:
		if _, err := uuid.Parse(v); err != nil {
			return fmt.Sprintf("%q is not a UUID", v)
		}
	case settingDuration:
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return fmt.Sprintf("%q is not a duration greater than 0, such as 10m", v)
		}
	case settingHostPort:
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return fmt.Sprintf("%q must be host:port, such as 10.0.0.2:53", v)
		}
	case settingEndpoint:
		if !strings.HasPrefix(v, "unix://") && !strings.HasPrefix(v, "tcp://") {
			return fmt.Sprintf("%q must be a unix:// or tcp:// Docker endpoint", v)
		}
	case settingBase64:
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return "must be base64 (the key's secret as BIND's tsig-keygen writes it)"
		}
	case settingDNSDomain:
		if !hostName.MatchString(strings.TrimSuffix(v, ".")) {
			return fmt.Sprintf("%q is not a domain name", v)
		}
	}
	return ""
}

var (
	// The provisioner's adapters' own rules (adapters/vm/local,
	// adapters/vm/digitalocean), checked here too so that a mistake is a
	// 400 naming the setting rather than a failure of the autoscaler;
	// tests/e2e TestProviderSettingsTheAPIRefusesTheProvidersRefuseToo
	// keeps the two in step.
	dockerImage = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$`)
	dockerName  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	doTag       = regexp.MustCompile(`^[a-zA-Z0-9_:-]{1,255}$`)
)

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Provider is a VM provider or a DNS provider: a type, the type's
// settings, and the names of the secrets it holds (never their values).
type Provider struct {
	ID         string     `db:"id" json:"id"`
	Name       string     `db:"name" json:"name"`
	Type       string     `db:"type" json:"type"`
	Settings   JSONObject `db:"settings" json:"settings"`
	Secrets    JSONObject `db:"secrets" json:"-"`
	SecretsSet []string   `db:"-" json:"secrets_set"`
	// CAFingerprint is the SHA-256 of a VM provider's certificate
	// authority, which signs its machines' engine certificates.
	CAFingerprint string    `db:"-" json:"ca_fingerprint,omitempty"`
	CreatedAt     time.Time `db:"created_at" json:"created_at"`
	UpdatedAt     time.Time `db:"updated_at" json:"updated_at"`

	// ProviderTLS is a VM provider's certificate authority and the
	// provisioners' client certificate, made when the provider is created.
	ProviderTLS `json:"-"`
}

// ProviderTLS is a VM provider's certificate material, PEM.
type ProviderTLS struct {
	CACert     string `db:"tls_ca_cert"`
	CAKey      string `db:"tls_ca_key"`
	ClientCert string `db:"tls_client_cert"`
	ClientKey  string `db:"tls_client_key"`
}

// ShowSecrets sets SecretsSet from the secrets p holds.
func (p *Provider) ShowSecrets() {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(p.Secrets, &m)
	p.SecretsSet = slices.Sorted(maps.Keys(m))
	if p.SecretsSet == nil {
		p.SecretsSet = []string{}
	}
}

// ProviderUpdate is the body of PATCH /api/v1/vm-providers/{name} and
// /api/v1/dns-providers/{name}. settings, when present, replace the old
// ones; secrets are merged key by key (a secret cannot be read back to be
// sent again), null removing one.
type ProviderUpdate struct {
	Name     Optional[string]                     `json:"name"`
	Type     Optional[string]                     `json:"type"`
	Settings Optional[map[string]json.RawMessage] `json:"settings"`
	Secrets  Optional[map[string]json.RawMessage] `json:"secrets"`
}

// ProviderCreate is the body of POST: name and type required.
type ProviderCreate ProviderUpdate

// ValidateVM lists the problems of a VM provider's create body.
func (in ProviderCreate) ValidateVM() FieldErrors {
	return validateProvider(ProviderUpdate(in), required, vmProviderTypes)
}

// ValidateDNS lists the problems of a DNS provider's create body.
func (in ProviderCreate) ValidateDNS() FieldErrors {
	return validateProvider(ProviderUpdate(in), required, dnsProviderTypes)
}

// ValidateVM lists the problems of a VM provider's update body that show
// without the provider.
func (in ProviderUpdate) ValidateVM() FieldErrors {
	return validateProvider(in, optional, vmProviderTypes)
}

// ValidateDNS lists the problems of a DNS provider's update body that show
// without the provider.
func (in ProviderUpdate) ValidateDNS() FieldErrors {
	return validateProvider(in, optional, dnsProviderTypes)
}

func validateProvider(in ProviderUpdate, p presence, types map[string]providerType) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, p)
	checkEnum(&errs, "type", in.Type, p, typeNames(types)...)
	checkPresent(&errs, "settings", in.Settings, optional)
	checkPresent(&errs, "secrets", in.Secrets, optional)
	return errs
}

// Provider returns the provider the body describes.
func (in ProviderCreate) Provider() Provider {
	p := Provider{Settings: JSONObject("{}"), Secrets: JSONObject("{}")}
	ProviderUpdate(in).Apply(&p)
	return p
}

// Apply changes p as the body says.
func (in ProviderUpdate) Apply(p *Provider) {
	setIfPresent(&p.Name, in.Name)
	setIfPresent(&p.Type, in.Type)
	if in.Settings.Has() {
		p.Settings = objectOf(in.Settings.Value)
	}
	if in.Secrets.Has() {
		var held map[string]json.RawMessage
		_ = json.Unmarshal(p.Secrets, &held)
		if held == nil {
			held = map[string]json.RawMessage{}
		}
		for k, v := range in.Secrets.Value {
			if string(v) == "null" {
				delete(held, k)
			} else {
				held[k] = v
			}
		}
		p.Secrets = objectOf(held)
	}
	p.ShowSecrets()
}

// CheckVM lists the problems of a whole VM provider once a body has been
// applied to it: its settings and secrets against its type's.
func (p Provider) CheckVM() FieldErrors { return p.check(vmProviderTypes) }

// CheckDNS lists the problems of a whole DNS provider.
func (p Provider) CheckDNS() FieldErrors { return p.check(dnsProviderTypes) }

func (p Provider) check(types map[string]providerType) FieldErrors {
	var errs FieldErrors
	t, ok := types[p.Type]
	if !ok {
		errs.Add("type", "must be one of %s", strings.Join(typeNames(types), ", "))
		return errs
	}
	var settings, secrets map[string]json.RawMessage
	_ = json.Unmarshal(p.Settings, &settings)
	_ = json.Unmarshal(p.Secrets, &secrets)
	checkSettings(&errs, "settings", settings, t.settings, true)
	checkSettings(&errs, "secrets", secrets, t.secrets, true)
	if p.Type == DNSProviderRFC2136 {
		// A TSIG key is a name and a secret: one without the other signs
		// nothing.
		_, name := settings["tsig_key_name"]
		_, secret := secrets["tsig_secret"]
		switch {
		case name && !secret:
			errs.Add("secrets.tsig_secret", "is required with settings.tsig_key_name")
		case secret && !name:
			errs.Add("settings.tsig_key_name", "is required with secrets.tsig_secret")
		}
	}
	return errs
}

// MovedVM names the first of what changed from old to p that a VM provider
// with machines cannot change: its type, or where its machines are (""
// when nothing did).
func (p Provider) MovedVM(old Provider) string { return p.moved(old, vmProviderTypes) }

// MovedDNS is MovedVM for a DNS provider with records.
func (p Provider) MovedDNS(old Provider) string { return p.moved(old, dnsProviderTypes) }

func (p Provider) moved(old Provider, types map[string]providerType) string {
	if p.Type != old.Type {
		return "type"
	}
	var now, was map[string]json.RawMessage
	_ = json.Unmarshal(p.Settings, &now)
	_ = json.Unmarshal(old.Settings, &was)
	for _, k := range types[p.Type].where {
		if string(now[k]) != string(was[k]) {
			return "settings." + k
		}
	}
	return ""
}

// MachineGPUs is the GPUs each machine of a VM provider has: its
// settings' gpus (0 for a type without them).
func (p Provider) MachineGPUs() int {
	var settings struct {
		GPUs int `json:"gpus"`
	}
	_ = json.Unmarshal(p.Settings, &settings)
	return settings.GPUs
}
