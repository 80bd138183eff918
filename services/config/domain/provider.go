package domain

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"
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
)

// setting is one setting (or secret) of a provider type.
type setting struct {
	key      string
	kind     settingKind
	required bool
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
		{key: "image", kind: settingString},
		{key: "network", kind: settingString},
		{key: "cores", kind: settingNumber},
		{key: "memory_mb", kind: settingCount},
	}, where: []string{"docker_endpoint", "network"}},
	// Droplets that start Debian's Docker Engine from cloud-init user data.
	VMProviderDigitalOcean: {
		settings: []setting{
			{key: "api_url", kind: settingString},
			{key: "region", kind: settingString, required: true},
			{key: "size", kind: settingString, required: true},
			{key: "image", kind: settingString},
			{key: "ssh_keys", kind: settingStrings},
			{key: "vpc_uuid", kind: settingString},
			{key: "tags", kind: settingStrings},
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
			{key: "ttl", kind: settingCount},
			{key: "tsig_key_name", kind: settingDNSDomain},
			{key: "tsig_algorithm", kind: settingString},
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
	case settingCount:
		var n int64
		if json.Unmarshal(raw, &n) != nil || n < 0 || n > 1<<31-1 {
			return "must be a whole number, 0 or more"
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
	switch s.kind {
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
