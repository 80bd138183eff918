package e2e

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The layers of a service and what each may not import; docs/architecture.md
// explains them. A rule names an import path prefix, with {svc} standing for
// the service's own module.
var layerRules = []struct {
	layer     *regexp.Regexp
	forbidden []string
	why       string
}{
	{
		layer: regexp.MustCompile(`^github\.com/greenroom-dev/greenroom/services/[a-z]+/domain(/|$)`),
		forbidden: []string{"{svc}/app", "{svc}/adapters", "{svc}/ports", "{svc}/service",
			"github.com/jmoiron/sqlx", "github.com/nats-io/", "github.com/docker/", "github.com/moby/",
			"github.com/greenroom-dev/greenroom/libs/db", "github.com/greenroom-dev/greenroom/libs/bus",
			"github.com/greenroom-dev/greenroom/libs/outbox", "net/http"},
		why: "domain holds rules without I/O",
	},
	{
		layer: regexp.MustCompile(`^github\.com/greenroom-dev/greenroom/services/[a-z]+/app(/|$)`),
		forbidden: []string{"{svc}/adapters", "{svc}/ports", "{svc}/service",
			"github.com/jmoiron/sqlx", "github.com/lib/pq", "github.com/docker/", "github.com/moby/",
			"github.com/containerd/", "github.com/nats-io/", "github.com/greenroom-dev/greenroom/libs/db",
			"github.com/greenroom-dev/greenroom/libs/outbox", "github.com/greenroom-dev/greenroom/libs/bus"},
		why: "app depends on the small interfaces it declares, implemented in adapters",
	},
	{
		layer:     regexp.MustCompile(`^github\.com/greenroom-dev/greenroom/services/[a-z]+/ports(/|$)`),
		forbidden: []string{"{svc}/adapters", "{svc}/service"},
		why:       "ports call the use cases of app, never the adapters",
	},
	{
		layer:     regexp.MustCompile(`^github\.com/greenroom-dev/greenroom/services/[a-z]+/adapters(/|$)`),
		forbidden: []string{"{svc}/ports", "{svc}/service"},
		why:       "adapters implement app's interfaces; only service wires",
	},
	{
		layer:     regexp.MustCompile(`^github\.com/greenroom-dev/greenroom/libs(/|$)`),
		forbidden: []string{"github.com/greenroom-dev/greenroom/services/"},
		why:       "libs serve every service and know none",
	},
}

var serviceModule = regexp.MustCompile(`^github\.com/greenroom-dev/greenroom/services/[a-z]+`)

// TestLayersImportOnlyWhatTheyMay checks the import rules of
// docs/architecture.md over every package of every service and of libs.
func TestLayersImportOnlyWhatTheyMay(t *testing.T) {
	list := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`,
		"github.com/greenroom-dev/greenroom/services/...", "github.com/greenroom-dev/greenroom/libs/...")
	list.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg, imports := fields[0], fields[1:]
		svc := serviceModule.FindString(pkg)
		for _, rule := range layerRules {
			if !rule.layer.MatchString(pkg) {
				continue
			}
			checked++
			for _, imp := range imports {
				for _, f := range rule.forbidden {
					f = strings.ReplaceAll(f, "{svc}", svc)
					if imp == f || strings.HasPrefix(imp, strings.TrimSuffix(f, "/")+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(imp, f)) {
						t.Errorf("%s imports %s: %s", pkg, imp, rule.why)
					}
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d packages: the listing is not what this test expects", checked)
	}
}
