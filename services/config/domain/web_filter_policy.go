package domain

import (
	"fmt"
	"slices"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
)

// WebFilterPolicyDefaultAllowDefault is whether a policy allows the
// domains it does not list, unless told.
const WebFilterPolicyDefaultAllowDefault = true

// WebFilterPolicy says which web domains a session's browser may reach:
// the listed ones are allowed or denied, the others follow DefaultAllow. A
// workspace's policy is fixed per workspace, so it is compatible with
// staging; a group's makes its users' sessions on demand. The container
// receives the policy (GREENROOM_WEB_FILTER); enforcing it is the image's
// job, as in Kasm.
type WebFilterPolicy struct {
	ID             string    `db:"id" json:"id"`
	Name           string    `db:"name" json:"name"`
	DefaultAllow   bool      `db:"default_allow" json:"default_allow"`
	AllowedDomains Labels    `db:"allowed_domains" json:"allowed_domains"`
	DeniedDomains  Labels    `db:"denied_domains" json:"denied_domains"`
	CreatedAt      time.Time `db:"created_at" json:"created_at"`
	UpdatedAt      time.Time `db:"updated_at" json:"updated_at"`
}

// Validate lists the problems only the whole policy shows, once a body has
// been applied to it: a domain both allowed and denied says nothing.
func (p WebFilterPolicy) Validate() FieldErrors {
	var errs FieldErrors
	for i, d := range p.DeniedDomains {
		if slices.Contains(p.AllowedDomains, d) {
			errs.Add(fmt.Sprintf("denied_domains[%d]", i), "%q is also in allowed_domains; list a domain in one of them", d)
		}
	}
	return errs
}

// WebFilterPolicyUpdate is the body of PATCH
// /api/v1/web-filter-policies/{name}; the domain lists, when present,
// replace the old ones.
type WebFilterPolicyUpdate struct {
	Name           Optional[string]   `json:"name"`
	DefaultAllow   Optional[bool]     `json:"default_allow"`
	AllowedDomains Optional[[]string] `json:"allowed_domains"`
	DeniedDomains  Optional[[]string] `json:"denied_domains"`
}

// WebFilterPolicyCreate is the body of POST /api/v1/web-filter-policies:
// the same fields, name required.
type WebFilterPolicyCreate WebFilterPolicyUpdate

// Validate lists the body's problems.
func (in WebFilterPolicyCreate) Validate() FieldErrors {
	return validateWebFilterPolicy(WebFilterPolicyUpdate(in), required)
}

// Validate lists the body's problems.
func (in WebFilterPolicyUpdate) Validate() FieldErrors {
	return validateWebFilterPolicy(in, optional)
}

func validateWebFilterPolicy(in WebFilterPolicyUpdate, name presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, name)
	checkPresent(&errs, "default_allow", in.DefaultAllow, optional)
	checkDomains(&errs, "allowed_domains", in.AllowedDomains)
	checkDomains(&errs, "denied_domains", in.DeniedDomains)
	return errs
}

func checkDomains(errs *FieldErrors, field string, o Optional[[]string]) {
	if !present(errs, field, o, optional) {
		return
	}
	for i, d := range o.Value {
		if problem := containerconfig.CheckDomain(d); problem != "" {
			errs.Add(fmt.Sprintf("%s[%d]", field, i), "%s", problem)
		}
	}
}

// WebFilterPolicy returns the policy the body describes, with defaults
// filled in.
func (in WebFilterPolicyCreate) WebFilterPolicy() WebFilterPolicy {
	p := WebFilterPolicy{DefaultAllow: WebFilterPolicyDefaultAllowDefault, AllowedDomains: Labels{}, DeniedDomains: Labels{}}
	WebFilterPolicyUpdate(in).Apply(&p)
	return p
}

// Apply changes p as the body says.
func (in WebFilterPolicyUpdate) Apply(p *WebFilterPolicy) {
	setIfPresent(&p.Name, in.Name)
	setIfPresent(&p.DefaultAllow, in.DefaultAllow)
	if in.AllowedDomains.Has() {
		p.AllowedDomains = Labels(in.AllowedDomains.Value)
	}
	if in.DeniedDomains.Has() {
		p.DeniedDomains = Labels(in.DeniedDomains.Value)
	}
}
