package natsauth_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/greenroom-dev/greenroom/libs/natsauth"
)

// TestConfIsWhatTheEmbeddedServerGets parses the generated configuration
// with nats-server's own parser: the deployed server gets the same users
// and permissions as the tests' embedded one, and no password in clear.
func TestConfIsWhatTheEmbeddedServerGets(t *testing.T) {
	passwords := map[string]string{natsauth.Admin: "a-secret", "billing": "b-secret"}
	for _, s := range natsauth.Services {
		passwords[s] = s + "-secret"
	}
	conf, err := natsauth.Conf(passwords)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the generated configuration: %v\n%s", err, conf)
	}
	want, err := natsauth.ServerUsers(passwords)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Users) != len(want) {
		t.Fatalf("%d users in the file, %d embedded", len(opts.Users), len(want))
	}
	for _, w := range want {
		i := slices.IndexFunc(opts.Users, func(u *server.User) bool { return u.Username == w.Username })
		if i < 0 {
			t.Fatalf("user %s missing from the file", w.Username)
		}
		got := opts.Users[i]
		if got.Password == passwords[w.Username] {
			t.Errorf("%s: the file holds the password in clear", w.Username)
		}
		if bcrypt.CompareHashAndPassword([]byte(got.Password), []byte(passwords[w.Username])) != nil {
			t.Errorf("%s: the file's hash does not match the password", w.Username)
		}
		if (w.Permissions == nil) != (got.Permissions == nil) {
			t.Fatalf("%s: permissions %v in the file, %v embedded", w.Username, got.Permissions, w.Permissions)
		}
		if w.Permissions == nil {
			continue
		}
		if !slices.Equal(got.Permissions.Publish.Allow, w.Permissions.Publish.Allow) ||
			!slices.Equal(got.Permissions.Publish.Deny, w.Permissions.Publish.Deny) ||
			!slices.Equal(got.Permissions.Subscribe.Allow, w.Permissions.Subscribe.Allow) {
			t.Errorf("%s: file %+v / %+v, embedded %+v / %+v", w.Username,
				got.Permissions.Publish, got.Permissions.Subscribe, w.Permissions.Publish, w.Permissions.Subscribe)
		}
	}
}

// TestPermissionsKeepServicesToTheirSubjects checks the table's promises
// subject by subject, with nats-server's own subject matching.
func TestPermissionsKeepServicesToTheirSubjects(t *testing.T) {
	allowed := func(user, subject string) bool {
		p, err := natsauth.For(user)
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			return true
		}
		match := func(list []string) bool {
			return slices.ContainsFunc(list, func(pattern string) bool { return server.SubjectsCollide(pattern, subject) })
		}
		return match(p.Publish) && !match(p.DenyPublish)
	}
	for _, c := range []struct {
		user, subject string
		want          bool
	}{
		{"assigner", "greenroom.config.changed.zone", false},
		{"assigner", "greenroom.session.destroy", false},
		{"assigner", "greenroom.session.ready.billing", true},
		{"config", "greenroom.config.changed.zone", true},
		{"provisioner", "greenroom.config.changed.zone", false},
		{"provisioner", "greenroom.container.created", true},
		{"provisioner", "greenroom.container.removed", true},
		{"provisioner", "greenroom.session.assign_ran", true},
		{"provisioner", "greenroom.agent.lifecycle", true},
		{"config", "greenroom.agent.lifecycle", false},
		{"assigner", "greenroom.agent.lifecycle", false},
		{"billing", "greenroom.agent.lifecycle", false},
		{"assigner", "greenroom.container.created", false},
		{"expiry", "greenroom.container.removed", false},
		{"config", "greenroom.session.assign_ran", false},
		{"gateway", "greenroom.session.assign_ran", false},
		{"billing", "greenroom.container.created", false},
		{"billing", "greenroom.session.requested.billing", true},
		{"billing", "greenroom.session.requested.reports", false},
		{"billing", "greenroom.session.requested", false},
		{"billing", "$JS.API.CONSUMER.MSG.NEXT.GREENROOM.assigner", false},
		{"billing", "$JS.API.CONSUMER.CREATE.GREENROOM.x.greenroom.session.ready.reports", false},
		{"billing", "$JS.API.CONSUMER.CREATE.GREENROOM.x.greenroom.session.ready.billing", true},
		{"billing", "$JS.API.STREAM.UPDATE.GREENROOM", false},
		// A create (or update) of a services' durable consumer, even with
		// the requester's own filter, would take it over.
		{"billing", "$JS.API.CONSUMER.CREATE.GREENROOM.assigner.greenroom.session.ready.billing", false},
		{"billing", "$JS.API.CONSUMER.CREATE.GREENROOM.provisioner", false},
		{"config", "$JS.API.CONSUMER.CREATE.GREENROOM.x.greenroom.session.ready", true},
		{"config", "$JS.API.CONSUMER.CREATE.GREENROOM.assigner.greenroom.session.ready", false},
		{"config", "$JS.API.CONSUMER.CREATE.GREENROOM.x.greenroom.session.requested", false},
		{"config", "$JS.API.CONSUMER.MSG.NEXT.GREENROOM.assigner", false},
		{"expiry", "$JS.API.STREAM.UPDATE.GREENROOM", false},
		{natsauth.Admin, "$JS.API.STREAM.UPDATE.GREENROOM", true},
	} {
		if got := allowed(c.user, c.subject); got != c.want {
			t.Errorf("%s may publish %s: %v, want %v", c.user, c.subject, got, c.want)
		}
	}
	if _, err := natsauth.For("not a name"); err == nil {
		t.Errorf("a requester name with spaces was accepted")
	}
}
