package domain_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

func TestEffectiveLabelsAreOwnAndPoolsOnceSorted(t *testing.T) {
	for _, tc := range []struct {
		own, pool, want domain.Labels
	}{
		{nil, nil, nil},
		{domain.Labels{"ssd"}, nil, domain.Labels{"ssd"}},
		{nil, domain.Labels{"gpu", "b"}, domain.Labels{"b", "gpu"}},
		{domain.Labels{"gpu", "a", "a"}, domain.Labels{"gpu", "b"}, domain.Labels{"a", "b", "gpu"}},
	} {
		if got := domain.EffectiveLabels(tc.own, tc.pool); !slices.Equal(got, tc.want) {
			t.Errorf("EffectiveLabels(%v, %v) = %v, want %v", tc.own, tc.pool, got, tc.want)
		}
	}
	own := domain.Labels{"z", "a"}
	domain.EffectiveLabels(own, domain.Labels{"m"})
	if !slices.Equal(own, domain.Labels{"z", "a"}) {
		t.Errorf("EffectiveLabels changed the member's own labels: %v", own)
	}
}

func TestServerAssignmentIsForServerPoolsOnly(t *testing.T) {
	for _, tc := range []struct {
		pool  domain.Pool
		field string
	}{
		{domain.Pool{Type: domain.PoolServer, ServerAssignment: true}, ""},
		{domain.Pool{Type: domain.PoolServer}, ""},
		{domain.Pool{Type: domain.PoolDockerAgent}, ""},
		{domain.Pool{Type: domain.PoolDockerAgent, ServerAssignment: true}, "server_assignment"},
	} {
		var field string
		if errs := tc.pool.Validate(); len(errs) > 0 {
			field = errs[0].Field
		}
		if field != tc.field {
			t.Errorf("%s pool, server_assignment %v: error on %q, want %q", tc.pool.Type, tc.pool.ServerAssignment, field, tc.field)
		}
	}
}

func TestPoolMembersAreItsOwnOfItsKind(t *testing.T) {
	id, other := "p1", "p2"
	p := domain.Pool{ID: id, Type: domain.PoolServer, Labels: domain.Labels{"gpu"}}
	p.SetMembers(
		[]domain.Server{{Name: "s1", PoolID: &id, Labels: domain.Labels{"a"}}, {Name: "s2", PoolID: &other}, {Name: "s3"}},
		nil,
		[]domain.Workspace{{Name: "w1", ServerPoolID: &id}, {Name: "w2"}},
	)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Members    []map[string]any `json:"members"`
		Workspaces []string         `json:"workspaces"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Members) != 1 || got.Members[0]["name"] != "s1" || got.Members[0]["assigned_user"] != nil ||
		!slices.Equal(got.Members[0]["effective_labels"].([]any), []any{"a", "gpu"}) {
		t.Errorf("members %v", got.Members)
	}
	if !slices.Equal(got.Workspaces, []string{"w1"}) {
		t.Errorf("workspaces %v", got.Workspaces)
	}

	empty := domain.Pool{ID: other}
	empty.SetMembers(nil, nil, nil)
	if b, _ := json.Marshal(empty); !strings.Contains(string(b), `"members":[]`) || !strings.Contains(string(b), `"workspaces":[]`) {
		t.Errorf("a pool without members: %s", b)
	}
}
