package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

const (
	webFilterPolicyColumns = `wf.id, wf.name, wf.default_allow, wf.allowed_domains, wf.denied_domains,
	wf.created_at, wf.updated_at`
	webFilterPolicySelect = `SELECT ` + webFilterPolicyColumns + ` FROM web_filter_policies wf`
)

// GetWebFilterPolicy loads the web filter policy named name.
func (q Tables) GetWebFilterPolicy(ctx context.Context, name string, lock app.Lock) (domain.WebFilterPolicy, error) {
	var p domain.WebFilterPolicy
	err := get(ctx, q, &p, fmt.Sprintf("web filter policy %q", name), webFilterPolicySelect+` WHERE wf.name = $1`+clause(lock, "wf"), name)
	return p, err
}

// ListWebFilterPolicies loads one page of the web filter policies, by name.
func (q Tables) ListWebFilterPolicies(ctx context.Context, p domain.Page) (domain.Paged[domain.WebFilterPolicy], error) {
	return listPage(ctx, q, "web filter policies", webFilterPolicySelect, nil, nil,
		byName("wf.name", func(v domain.WebFilterPolicy) string { return v.Name }), p)
}

// InsertWebFilterPolicy stores a new web filter policy and returns it as
// stored.
func (q Tables) InsertWebFilterPolicy(ctx context.Context, p domain.WebFilterPolicy) (domain.WebFilterPolicy, error) {
	var out domain.WebFilterPolicy
	err := q.GetContext(ctx, &out, `INSERT INTO web_filter_policies AS wf
		(id, name, default_allow, allowed_domains, denied_domains)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+webFilterPolicyColumns,
		p.ID, p.Name, p.DefaultAllow, p.AllowedDomains, p.DeniedDomains)
	if err != nil {
		return domain.WebFilterPolicy{}, fmt.Errorf("inserting web filter policy %q: %w", p.Name, err)
	}
	return out, nil
}

// UpdateWebFilterPolicy stores every field of p and returns it as stored.
// A change of its content raises the revision of every workspace that uses
// it (a trigger), since their containers carry it.
func (q Tables) UpdateWebFilterPolicy(ctx context.Context, p domain.WebFilterPolicy) (domain.WebFilterPolicy, error) {
	var out domain.WebFilterPolicy
	err := get(ctx, q, &out, fmt.Sprintf("web filter policy %q", p.Name), `UPDATE web_filter_policies AS wf
		SET name = $2, default_allow = $3, allowed_domains = $4, denied_domains = $5, updated_at = now()
		WHERE wf.id = $1 RETURNING `+webFilterPolicyColumns,
		p.ID, p.Name, p.DefaultAllow, p.AllowedDomains, p.DeniedDomains)
	return out, err
}

// DeleteWebFilterPolicy deletes the web filter policy with id; a
// foreign-key violation means a group or workspace still uses it.
func (q Tables) DeleteWebFilterPolicy(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting web filter policy", `DELETE FROM web_filter_policies WHERE id = $1`, id)
}
