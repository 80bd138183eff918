package events_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/events"
)

func TestDestroyCauseOfEveryReasonGreenroomGives(t *testing.T) {
	for _, tc := range []struct{ reason, cause string }{
		{events.ExpiredStaged, events.CauseExpired},
		{events.ExpiredTimeLimit, events.CauseTimeLimit},
		{events.ExpiredKeepalive, events.CauseKeepalive},
		{events.ExpiredProvisioning, events.CauseProvisioningTimeout},
		{events.ExpiredAssigning, events.CauseAssignTimeout},
		{"api", events.CauseDeleted},
		{"user", events.CauseDeleted},
		{"staging_config_deleted", events.CauseDeleted},
		{"destroy_retry", events.CauseDeleted},
		{"pool_shrink", events.CauseShrunk},
		{"pool_roll", events.CauseRolled},
		// Reasons no Greenroom service gives: an operator's or a test's.
		{"user_logout", events.CauseOther},
		{"", events.CauseOther},
		{"API", events.CauseOther},
	} {
		if got := events.DestroyCause(tc.reason); got != tc.cause {
			t.Errorf("DestroyCause(%q) = %q, want %q", tc.reason, got, tc.cause)
		}
	}
}

func TestEveryListedDestroyReasonHasACauseOtherThanOther(t *testing.T) {
	for _, r := range events.DestroyReasons {
		if c := events.DestroyCause(r); c == events.CauseOther || !slices.Contains(events.DestroyCauses, c) {
			t.Errorf("DestroyCause(%q) = %q", r, c)
		}
	}
	for _, r := range events.ExpiryReasons {
		if !slices.Contains(events.DestroyReasons, r) {
			t.Errorf("expiry reason %q is not in DestroyReasons", r)
		}
	}
}

func TestAFailedSessionsContainerRemovedIsCausedByItsFailureUnlessATimerFailedIt(t *testing.T) {
	for _, tc := range []struct{ reason, cause string }{
		{events.ExpiredProvisioning, events.CauseProvisioningTimeout},
		{events.ExpiredAssigning, events.CauseAssignTimeout},
		{"api", events.CauseFailed},
		{"user", events.CauseFailed},
		{"pool_shrink", events.CauseFailed},
		{"something else", events.CauseFailed},
	} {
		if got := events.DestroyCauseOfFailed(tc.reason); got != tc.cause {
			t.Errorf("DestroyCauseOfFailed(%q) = %q, want %q", tc.reason, got, tc.cause)
		}
	}
}

// The enums of the schemas are the contract; the constants are how Go
// code names them.
func TestCauseAndMethodConstantsAreTheSchemaEnums(t *testing.T) {
	for _, tc := range []struct {
		typ, field string
		want       []string
	}{
		{events.TypeSessionDestroyed, "cause", events.DestroyCauses},
		{events.TypeSessionAssignRan, "method", events.AssignMethods},
		{events.TypeContainerRemoved, "cause", []string{events.CauseOrphan}},
		{events.TypeAgentLifecycle, "to", events.AgentLifecycles},
		// A deleted agent moves no further.
		{events.TypeAgentLifecycle, "from", slices.DeleteFunc(slices.Clone(events.AgentLifecycles),
			func(l string) bool { return l == events.AgentDeleted })},
	} {
		var prop struct {
			Enum []string `json:"enum"`
		}
		if err := json.Unmarshal(readSchema(t, tc.typ).Properties.Data.Properties[tc.field], &prop); err != nil {
			t.Fatal(err)
		}
		got, want := slices.Sorted(slices.Values(prop.Enum)), slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema %s enum %v, Go constants %v", tc.typ, tc.field, got, want)
		}
	}
	if l := 1000; events.AssignDetailMaxLength != l {
		t.Errorf("AssignDetailMaxLength = %d, the schema says %d", events.AssignDetailMaxLength, l)
	}
}

// TestEveryDestroyReasonTheServicesGiveHasACause reads the services'
// source: every greenroom.session.destroy they write (an
// events.SessionDestroy literal) must give a reason of DestroyReasons,
// whose cause is not "other". A reason passed in by the caller (the
// gateway's Destroy(ctx, id, reason)) is followed to the calls in the
// same service, and one computed (a variable, a function of the same
// service) to every value it can take. The expiry reasons of
// greenroom.session.expired are an enum of its schema, checked above.
func TestEveryDestroyReasonTheServicesGiveHasACause(t *testing.T) {
	sent := destroyReasonsSent(t, filepath.Join("..", "..", "services"))
	t.Logf("destroy reasons the services give, and where: %v", sent)
	for _, want := range []string{"api", "user", "destroy_retry", "pool_shrink", "pool_roll", "staging_config_deleted"} {
		if _, ok := sent[want]; !ok {
			t.Errorf("the scan found no destroy with reason %q: it no longer reads the services (found %v)", want, sent)
		}
	}
	for reason, sites := range sent {
		if !slices.Contains(events.DestroyReasons, reason) {
			t.Errorf("reason %q (%s) is not in events.DestroyReasons", reason, strings.Join(sites, ", "))
		}
		if c := events.DestroyCause(reason); c == events.CauseOther {
			t.Errorf("reason %q (%s) has cause %q", reason, strings.Join(sites, ", "), c)
		}
	}
}

// The scan is only worth what it finds: every way a reason is given in
// testdata/destroyscan is found, with its value.
func TestTheDestroyScanFollowsEveryWayAReasonIsGiven(t *testing.T) {
	sent := destroyReasonsSent(t, filepath.Join("testdata", "destroyscan"))
	got := slices.Sorted(maps.Keys(sent))
	want := []string{"pool_shrink", "scan_fixture_computed_a", "scan_fixture_constant", "scan_fixture_literal", "scan_fixture_passed"}
	if !slices.Equal(got, want) {
		t.Errorf("found reasons %v, want %v", got, want)
	}
	for _, r := range got {
		if strings.HasPrefix(r, "scan_fixture") && events.DestroyCause(r) != events.CauseOther {
			t.Errorf("DestroyCause(%q) = %q, want other", r, events.DestroyCause(r))
		}
	}
}

// destroyReasonsSent maps each reason the Go code under root gives an
// events.SessionDestroy to where it does.
func destroyReasonsSent(t *testing.T, root string) map[string][]string {
	t.Helper()
	fset := token.NewFileSet()
	type file struct {
		path    string
		service string
		ast     *ast.File
	}
	var files []file
	parse := func(dir, service string) {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && d.Name() == "testdata" && service == "" {
				return filepath.SkipDir // the fixture services are not libs/events
			}
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files = append(files, file{path, service, f})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no services under %s: %v", root, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			parse(filepath.Join(root, e.Name()), e.Name())
		}
	}
	parse(".", "") // libs/events, for its constants

	// Every string constant, by name: a reason is a literal or a constant
	// (possibly of another constant, as the expiry's are of events').
	consts := map[string][]ast.Expr{}
	for _, f := range files {
		for _, decl := range f.ast.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						consts[name.Name] = append(consts[name.Name], vs.Values[i])
					}
				}
			}
		}
	}
	var resolve func(e ast.Expr, depth int) (string, bool)
	resolve = func(e ast.Expr, depth int) (string, bool) {
		if depth > 8 {
			return "", false
		}
		name := ""
		switch e := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(e.Value)
			return s, err == nil && e.Kind == token.STRING
		case *ast.Ident:
			name = e.Name
		case *ast.SelectorExpr:
			name = e.Sel.Name
		default:
			return "", false
		}
		values := map[string]bool{}
		for _, v := range consts[name] {
			if s, ok := resolve(v, depth+1); ok {
				values[s] = true
			}
		}
		if len(values) != 1 {
			return "", false // unknown, or ambiguous
		}
		for s := range values {
			return s, true
		}
		return "", false
	}

	// computed resolves a reason that is not a constant itself: a local
	// variable (what it is assigned), or the result of a call to a
	// function of the same service (every value it returns).
	var computed func(e ast.Expr, body *ast.BlockStmt, service string, depth int) ([]string, bool)
	computed = func(e ast.Expr, body *ast.BlockStmt, service string, depth int) ([]string, bool) {
		if s, ok := resolve(e, 0); ok {
			return []string{s}, true
		}
		if depth > 4 {
			return nil, false
		}
		var found []string
		ok := false
		switch e := e.(type) {
		case *ast.Ident:
			ok = true
			assigned := 0
			ast.Inspect(body, func(n ast.Node) bool {
				as, isAssign := n.(*ast.AssignStmt)
				if !isAssign || len(as.Lhs) != 1 || len(as.Rhs) != 1 {
					return true
				}
				if id, isIdent := as.Lhs[0].(*ast.Ident); isIdent && id.Name == e.Name {
					assigned++
					vs, vok := computed(as.Rhs[0], body, service, depth+1)
					found, ok = append(found, vs...), ok && vok
				}
				return true
			})
			ok = ok && assigned > 0
		case *ast.CallExpr:
			var name string
			switch fn := e.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			}
			ok = true
			returns := 0
			for _, f := range files {
				if f.service != service {
					continue
				}
				for _, decl := range f.ast.Decls {
					fd, isFunc := decl.(*ast.FuncDecl)
					if !isFunc || fd.Name.Name != name || fd.Body == nil {
						continue
					}
					ast.Inspect(fd.Body, func(n ast.Node) bool {
						switch n := n.(type) {
						case *ast.FuncLit:
							return false // its returns are not the function's
						case *ast.ReturnStmt:
							returns++
							if len(n.Results) != 1 {
								ok = false
								return true
							}
							vs, vok := computed(n.Results[0], fd.Body, service, depth+1)
							found, ok = append(found, vs...), ok && vok
						}
						return true
					})
				}
			}
			ok = ok && returns > 0
		}
		return found, ok && len(found) > 0
	}

	sent := map[string][]string{}
	type passed struct {
		service, fn string
		index, n    int
		site        string
	}
	var passedIn []passed
	for _, f := range files {
		if f.service == "" {
			continue
		}
		for _, decl := range f.ast.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			var params []string
			for _, field := range fd.Type.Params.List {
				for _, n := range field.Names {
					params = append(params, n.Name)
				}
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				lit, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				sel, ok := lit.Type.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "SessionDestroy" {
					return true
				}
				site := fset.Position(lit.Pos()).String()
				var reason ast.Expr
				for _, elt := range lit.Elts {
					if kv, ok := elt.(*ast.KeyValueExpr); ok {
						if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Reason" {
							reason = kv.Value
						}
					}
				}
				if reason == nil {
					t.Errorf("%s: a destroy without a reason", site)
					return true
				}
				if reasons, ok := computed(reason, fd.Body, f.service, 0); ok {
					for _, s := range reasons {
						sent[s] = append(sent[s], site)
					}
					return true
				}
				if id, ok := reason.(*ast.Ident); ok {
					if i := slices.Index(params, id.Name); i >= 0 {
						passedIn = append(passedIn, passed{f.service, fd.Name.Name, i, len(params), site})
						return true
					}
				}
				t.Errorf("%s: the destroy's reason cannot be told from the source; give it a constant", site)
				return true
			})
		}
	}
	for _, p := range passedIn {
		calls := 0
		for _, f := range files {
			if f.service != p.service {
				continue
			}
			ast.Inspect(f.ast, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != p.n {
					return true
				}
				var name string
				switch fn := call.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				if name != p.fn {
					return true
				}
				calls++
				site := fset.Position(call.Pos()).String()
				if s, ok := resolve(call.Args[p.index], 0); ok {
					sent[s] = append(sent[s], site+" via "+p.site)
				} else {
					t.Errorf("%s: the reason passed to %s cannot be told from the source", site, p.fn)
				}
				return true
			})
		}
		if calls == 0 {
			t.Errorf("%s: the reason is %s's parameter, and nothing in services/%s calls it", p.site, p.fn, p.service)
		}
	}
	return sent
}
