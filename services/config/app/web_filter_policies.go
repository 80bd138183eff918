package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListWebFilterPolicies returns one page (p) of every web filter policy.
func (a *App) ListWebFilterPolicies(ctx context.Context, p domain.Page) (domain.Paged[domain.WebFilterPolicy], error) {
	return paged(a.store.ListWebFilterPolicies(ctx, p))
}

// GetWebFilterPolicy returns the web filter policy named name.
func (a *App) GetWebFilterPolicy(ctx context.Context, name string) (domain.WebFilterPolicy, error) {
	p, err := a.store.GetWebFilterPolicy(ctx, name, NoLock)
	return p, notFoundOr(err, "no web filter policy named %q", name)
}

// CreateWebFilterPolicy stores a new web filter policy; groups and
// workspaces then name it in their web_filter_policy.
func (a *App) CreateWebFilterPolicy(ctx context.Context, in domain.WebFilterPolicyCreate) (domain.WebFilterPolicy, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.WebFilterPolicy{}, invalid(errs)
	}
	p := in.WebFilterPolicy()
	if errs := p.Validate(); len(errs) > 0 {
		return domain.WebFilterPolicy{}, invalid(errs)
	}
	p.ID = domain.NewID()
	err := a.change(ctx, KindWebFilterPolicy, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		p, err = tx.InsertWebFilterPolicy(ctx, p)
		return p.ID, p.Name, err
	})
	return p, explain(err, fmt.Sprintf("web filter policy %q", in.Name.Value))
}

// UpdateWebFilterPolicy changes the web filter policy named name. Staged
// containers of the workspaces that use it carry its old content: a change
// of content is a new revision of each of them (the database raises it),
// announced as a change of each workspace, so their pools roll.
func (a *App) UpdateWebFilterPolicy(ctx context.Context, name string, in domain.WebFilterPolicyUpdate) (domain.WebFilterPolicy, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.WebFilterPolicy{}, invalid(errs)
	}
	var p domain.WebFilterPolicy
	err := a.change(ctx, KindWebFilterPolicy, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		if p, err = tx.GetWebFilterPolicy(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no web filter policy named %q", name)
		}
		old := p
		in.Apply(&p)
		if errs := p.Validate(); len(errs) > 0 {
			return "", "", invalid(errs)
		}
		// The workspaces as they are before the change: none can start
		// using the policy meanwhile, since that reads it FOR SHARE.
		before, err := tx.ListWorkspacesOfWebFilterPolicy(ctx, p.ID)
		if err != nil {
			return "", "", err
		}
		if p, err = tx.UpdateWebFilterPolicy(ctx, p); err != nil {
			return "", "", err
		}
		if sameContent(old, p) {
			return p.ID, p.Name, nil
		}
		after, err := tx.ListWorkspacesOfWebFilterPolicy(ctx, p.ID)
		if err != nil {
			return "", "", err
		}
		if err := a.announceWorkspaces(ctx, tx, before, after); err != nil {
			return "", "", err
		}
		return p.ID, p.Name, nil
	})
	return p, explain(err, fmt.Sprintf("web filter policy %q", in.Name.Or(name)))
}

// announceWorkspaces announces the change of each workspace in after
// (the workspaces of a web filter policy just changed), from how it was in
// before.
func (a *App) announceWorkspaces(ctx context.Context, tx Tx, before, after []domain.Workspace) error {
	was := make(map[string]domain.Workspace, len(before))
	for _, w := range before {
		was[w.ID] = w
	}
	for _, w := range after {
		old, ok := was[w.ID]
		if !ok {
			return fmt.Errorf("workspace %q uses the web filter policy after its change, but did not before", w.Name)
		}
		oldView, err := render(old)
		if err != nil {
			return err
		}
		newView, err := render(w)
		if err != nil {
			return err
		}
		if err := a.announce(ctx, tx, events.ConfigChanged{Kind: KindWorkspace, Op: OpUpdated, ID: w.ID, Name: w.Name,
			Before: oldView, After: newView}); err != nil {
			return err
		}
	}
	return nil
}

// sameContent reports whether two versions of a policy tell a container
// the same: GREENROOM_WEB_FILTER carries its name too.
func sameContent(a, b domain.WebFilterPolicy) bool {
	return a.Name == b.Name && a.DefaultAllow == b.DefaultAllow && slices.Equal(a.AllowedDomains, b.AllowedDomains) &&
		slices.Equal(a.DeniedDomains, b.DeniedDomains)
}

// DeleteWebFilterPolicy deletes the web filter policy named name, unless a
// group or workspace uses it (409 naming them).
func (a *App) DeleteWebFilterPolicy(ctx context.Context, name string) error {
	err := a.change(ctx, KindWebFilterPolicy, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		// The lock waits for groups and workspaces being given the policy
		// (they read it FOR SHARE), so the users counted next are all.
		p, err := tx.GetWebFilterPolicy(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no web filter policy named %q", name)
		}
		if err := webFilterPolicyUnused(ctx, tx, p); err != nil {
			return "", "", err
		}
		return p.ID, p.Name, tx.DeleteWebFilterPolicy(ctx, p.ID)
	})
	return explain(err, fmt.Sprintf("web filter policy %q", name))
}

// webFilterPolicyUnused refuses (409) to delete a policy that groups or
// workspaces use, naming them.
func webFilterPolicyUnused(ctx context.Context, tx Tx, p domain.WebFilterPolicy) error {
	groups, err := tx.ListGroupsOfWebFilterPolicy(ctx, p.ID)
	if err != nil {
		return err
	}
	workspaces, err := tx.ListWorkspacesOfWebFilterPolicy(ctx, p.ID)
	if err != nil {
		return err
	}
	var users []string
	if len(groups) > 0 {
		users = append(users, "group(s) "+quoted(names(groups, func(g domain.Group) string { return g.Name })))
	}
	if len(workspaces) > 0 {
		users = append(users, "workspace(s) "+quoted(names(workspaces, func(w domain.Workspace) string { return w.Name })))
	}
	if len(users) > 0 {
		return conflict("web filter policy %q is used by %s; set their web_filter_policy to another policy or null first",
			p.Name, strings.Join(users, " and "))
	}
	return nil
}

// quoted lists names as "a", "b".
func quoted(names []string) string {
	return `"` + strings.Join(names, `", "`) + `"`
}

// names lists the name of each item.
func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}
