// Package natsauth is who may do what on a deployment's NATS server: one
// user per Greenroom service, one per requesting service, and one for
// operators, each allowed to publish and subscribe to its own subjects only
// (README, "NATS users"). The same table configures the deployed
// nats-server (Conf, written by `greenroom nats-users`) and the embedded
// server of the tests (ServerUsers), so what is tested is what runs.
//
// What the permissions guarantee:
//   - a service publishes only the events it produces (the assigner cannot
//     publish greenroom.config.changed.>, nor destroy a session); its outbox
//     relay publishes only its own rows (outbox.RelayConfig.Source);
//   - a requesting service asks for sessions only on its own subject,
//     greenroom.session.requested.<name>, so the assigner knows who asked,
//     and reads only its own outcomes, greenroom.session.ready.<name> and
//     .failed.<name> (events.SubjectFor), live or from the stream; it
//     cannot read the stream otherwise, nor another requester's replies;
//   - each user's replies (JetStream acknowledgements, API answers) come to
//     its own inbox prefix (InboxPrefix), which no other user may read.
package natsauth

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// Admin is the operators' user (greenroom migrate, audit, request, the
// benchmarks): every subject.
const Admin = "admin"

// Services are the users of Greenroom's own services, named as the
// services are.
var Services = []string{"config", "assigner", "provisioner", "expiry", "gateway"}

// Permissions are the subjects a user may publish to and subscribe to
// (NATS wildcards); nil for Admin, who may do anything.
type Permissions struct {
	Publish   []string
	Subscribe []string
	// DenyPublish wins over Publish.
	DenyPublish []string
}

// InboxPrefix is the inbox prefix of user's connection
// (nats.CustomInboxPrefix): its replies arrive below it, and only it may
// subscribe there.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// stream is the stream's name in JetStream API subjects.
const stream = bus.StreamName

// client is what any user of the stream needs: account and stream info,
// and its own inbox for the answers.
func client(user string) Permissions {
	return Permissions{
		Publish:   []string{"$JS.API.INFO", "$JS.API.STREAM.INFO." + stream},
		Subscribe: []string{InboxPrefix(user) + ".>"},
	}
}

// durable is what a service's durable pull consumer, named as the service,
// needs: create it (one filter subject or several), read its state, pull
// and acknowledge its messages, and report the ones it gives up on.
func durable(name string) Permissions {
	return Permissions{Publish: []string{
		"$JS.API.CONSUMER.CREATE." + stream + "." + name,
		"$JS.API.CONSUMER.CREATE." + stream + "." + name + ".>",
		"$JS.API.CONSUMER.INFO." + stream + "." + name,
		"$JS.API.CONSUMER.MSG.NEXT." + stream + "." + name,
		"$JS.ACK." + stream + "." + name + ".>",
		bus.DeadLetterSubject(name),
	}}
}

// outcomes are the subjects of every requester's outcomes: the services
// that announce them (assigner, provisioner, expiry) publish them all.
var outcomes = []string{
	events.TypeSessionReady, events.TypeSessionReady + ".*",
	events.TypeSessionFailed, events.TypeSessionFailed + ".*",
}

// For returns user's permissions: a service's (Services), Admin's (nil),
// or else a requesting service's (events.ValidRequester names only).
func For(user string) (*Permissions, error) {
	var p Permissions
	add := func(q Permissions) {
		p.Publish = append(p.Publish, q.Publish...)
		p.Subscribe = append(p.Subscribe, q.Subscribe...)
		p.DenyPublish = append(p.DenyPublish, q.DenyPublish...)
	}
	add(client(user))
	// Every service runs an outbox relay, whose dead letters go here.
	relay := Permissions{Publish: []string{"greenroom.dead.outbox", "$JS.API.STREAM.CREATE." + stream}}
	switch user {
	case Admin:
		return nil, nil
	case "config":
		// The admin API: configuration changes, session requests
		// (unqualified: the API is their requester), destroys and
		// keepalives; the console's live feed reads every event.
		add(relay)
		add(Permissions{
			Publish: []string{
				events.TypeConfigChanged + ".>", events.TypeSessionRequested,
				events.TypeSessionDestroy, events.TypeSessionKeepalive,
			},
			Subscribe: []string{"greenroom.>"},
		})
		add(lookback(events.TypeSessionReady, events.TypeSessionFailed))
		// The audit notary reads the whole stream in order and
		// announces its checkpoints.
		add(wholeStream())
		add(Permissions{Publish: []string{events.TypeAuditCheckpoint}})
	case "assigner":
		add(relay)
		add(durable("assigner"))
		add(Permissions{Publish: append([]string{
			events.TypeSessionAssigned, events.TypeProvisionRequested, events.TypeStagingViolation,
		}, outcomes...)})
	case "provisioner":
		add(relay)
		add(durable("provisioner"))
		add(Permissions{Publish: append([]string{
			events.TypeSessionStaged, events.TypeSessionDestroyed, events.TypeStagingShortfall,
			// A staging pool's own containers are asked for, and
			// destroyed when it shrinks, through the bus too.
			events.TypeProvisionRequested, events.TypeSessionDestroy,
			// The audit log's record of each container and assign step.
			events.TypeContainerCreated, events.TypeContainerRemoved, events.TypeSessionAssignRan,
			// Its autoscaler's record of each step of an agent's life.
			events.TypeAgentLifecycle,
		}, outcomes...)})
	case "expiry":
		add(relay)
		add(durable("expiry"))
		add(Permissions{Publish: append([]string{
			events.TypeSessionExpired, events.TypeSessionDestroy,
		}, outcomes...)})
	case "gateway":
		// A requesting service (launches from the dashboard) that also
		// sends keepalives on traffic and destroys on sign-out.
		add(requester("gateway"))
		add(Permissions{Publish: []string{events.TypeSessionKeepalive, events.TypeSessionDestroy}})
	default:
		if !events.ValidRequester(user) {
			return nil, fmt.Errorf("user %q: not a service, not %q, and not a valid requester name (letters, digits, '-', '_')", user, Admin)
		}
		add(requester(user))
	}
	return &p, nil
}

// lookback is what a reader of its own outcomes needs to look back at
// them in the stream (libs/client's Await of an outcome it missed):
// ephemeral ordered consumers whose one filter subject is one of subjects
// (a single filter is part of the API subject, so no other filter is
// allowed). An ordered consumer has a random name, so pulling from one is
// allowed by name pattern; the services' durable consumers are denied by
// name, so that such a reader can neither create, change, read nor take
// their messages.
func lookback(subjects ...string) Permissions {
	var p Permissions
	for _, subject := range subjects {
		p.Publish = append(p.Publish, "$JS.API.CONSUMER.CREATE."+stream+".*."+subject)
	}
	for _, op := range []string{"DELETE", "INFO", "MSG.NEXT"} {
		p.Publish = append(p.Publish, "$JS.API.CONSUMER."+op+"."+stream+".*")
	}
	for _, svc := range Services {
		p.DenyPublish = append(p.DenyPublish,
			"$JS.API.CONSUMER.CREATE."+stream+"."+svc, "$JS.API.CONSUMER.CREATE."+stream+"."+svc+".>")
		for _, op := range []string{"DELETE", "INFO", "MSG.NEXT"} {
			p.DenyPublish = append(p.DenyPublish, "$JS.API.CONSUMER."+op+"."+stream+"."+svc)
		}
	}
	return p
}

// wholeStream is what a reader of every event needs (the audit notary):
// ephemeral ordered consumers without a filter, the services' durable
// consumers denied as for lookback.
func wholeStream() Permissions {
	p := lookback()
	p.Publish = append(p.Publish, "$JS.API.CONSUMER.CREATE."+stream+".*",
		// An event a read skipped is looked up before it is called missing.
		"$JS.API.STREAM.MSG.GET."+stream)
	return p
}

// requester is a requesting service's permissions: its requests on its own
// subject, its outcomes live, and a look back at them in the stream.
func requester(name string) Permissions {
	ready, failed := events.SubjectFor(events.TypeSessionReady, name), events.SubjectFor(events.TypeSessionFailed, name)
	p := lookback(ready, failed)
	p.Publish = append(p.Publish, events.SubjectFor(events.TypeSessionRequested, name))
	p.Subscribe = []string{ready, failed}
	return p
}

// ServerUsers are the users of an embedded nats-server (server.Options
// Users), with the passwords given by user name; every user named in
// passwords gets For's permissions.
func ServerUsers(passwords map[string]string) ([]*server.User, error) {
	users := make([]*server.User, 0, len(passwords))
	for _, name := range slices.Sorted(maps.Keys(passwords)) {
		p, err := For(name)
		if err != nil {
			return nil, err
		}
		u := &server.User{Username: name, Password: passwords[name]}
		if p != nil {
			u.Permissions = &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: p.Publish, Deny: p.DenyPublish},
				Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
				// Replies to requests a user answers (none today) would
				// need allow_responses; nobody answers requests.
			}
		}
		users = append(users, u)
	}
	return users, nil
}

// Conf is the authorization block of a nats-server configuration file for
// the users in passwords, each password stored as a bcrypt hash (so the
// file does not hold them), with For's permissions.
func Conf(passwords map[string]string) (string, error) {
	var b strings.Builder
	b.WriteString("# Generated by greenroom nats-users: one user per service and requester\n")
	b.WriteString("# (libs/natsauth). Passwords are bcrypt hashes.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, name := range slices.Sorted(maps.Keys(passwords)) {
		p, err := For(name)
		if err != nil {
			return "", err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(passwords[name]), bcrypt.DefaultCost)
		if err != nil {
			return "", fmt.Errorf("hashing the password of %s: %w", name, err)
		}
		fmt.Fprintf(&b, "    {\n      user: %q\n      password: %q\n", name, string(hash))
		if p != nil {
			deny := ""
			if len(p.DenyPublish) > 0 {
				deny = ", deny: " + list(p.DenyPublish)
			}
			fmt.Fprintf(&b, "      permissions: {\n        publish: { allow: %s%s }\n        subscribe: { allow: %s }\n      }\n",
				list(p.Publish), deny, list(p.Subscribe))
		}
		b.WriteString("    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func list(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ConnectOptions are the options a connection to natsURL (one URL or a
// comma-separated list) needs under these permissions: the inbox prefix of
// the user the URL names (nats://user:password@host:4222), the only one it
// may read replies on. None when the URL names no user.
func ConnectOptions(natsURL string) []nats.Option {
	first, _, _ := strings.Cut(natsURL, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil || u.User == nil || u.User.Username() == "" {
		return nil
	}
	return []nats.Option{nats.CustomInboxPrefix(InboxPrefix(u.User.Username()))}
}
