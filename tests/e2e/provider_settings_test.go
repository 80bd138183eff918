package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// TestProviderSettingsTheAPIRefusesTheProvidersRefuseToo keeps the config
// service's checks of provider settings in step with the provisioner's
// adapters, which build the providers from them: a setting one refuses,
// the other refuses too (the API with a 400 naming it, so that a mistake
// never reaches the autoscaler), and what one accepts the other accepts.
func TestProviderSettingsTheAPIRefusesTheProvidersRefuseToo(t *testing.T) {
	g := start(t)
	type body = map[string]any
	cases := []struct {
		name, kind, typ string
		settings        body
		secrets         body
		field           string // "" when both accept it
	}{
		{"local defaults", "vm", "local_docker", body{}, nil, ""},
		{"local, all set", "vm", "local_docker", body{"docker_endpoint": "unix:///var/run/docker.sock", "image": "greenroom/agent-engine:latest",
			"network": "greenroom-agents", "cores": 2, "memory_mb": 4096}, nil, ""},
		{"local network name", "vm", "local_docker", body{"network": "bad name!"}, nil, "settings.network"},
		{"local image", "vm", "local_docker", body{"image": "Greenroom/Agent"}, nil, "settings.image"},
		{"local memory", "vm", "local_docker", body{"memory_mb": 100}, nil, "settings.memory_mb"},
		{"local cores", "vm", "local_docker", body{"cores": 0.001}, nil, "settings.cores"},
		{"local endpoint", "vm", "local_docker", body{"docker_endpoint": "http://10.0.0.1:2375"}, nil, "settings.docker_endpoint"},
		{"digitalocean", "vm", "digitalocean", body{"region": "ams3", "size": "s-2vcpu-4gb", "cores": 2, "memory_mb": 4096,
			"vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4", "tags": []string{"team:desk"}}, body{"token": "t"}, ""},
		{"digitalocean over http", "vm", "digitalocean", body{"api_url": "http://api.example.com/", "region": "ams3", "size": "s",
			"cores": 2, "memory_mb": 4096}, body{"token": "t"}, "settings.api_url"},
		{"digitalocean vpc", "vm", "digitalocean", body{"vpc_uuid": "vpc-1", "region": "ams3", "size": "s", "cores": 2, "memory_mb": 4096},
			body{"token": "t"}, "settings.vpc_uuid"},
		{"digitalocean tag", "vm", "digitalocean", body{"tags": []string{"a.b"}, "region": "ams3", "size": "s", "cores": 2, "memory_mb": 4096},
			body{"token": "t"}, "settings.tags"},
		{"digitalocean token", "vm", "digitalocean", body{"region": "ams3", "size": "s", "cores": 2, "memory_mb": 4096}, nil, "secrets.token"},
		{"rfc2136", "dns", "rfc2136", body{"server": "10.0.0.2:53", "zone": "agents.example.com", "ttl": 30, "tsig_key_name": "greenroom",
			"tsig_algorithm": "hmac-sha512"}, body{"tsig_secret": "c2VjcmV0"}, ""},
		{"rfc2136 algorithm", "dns", "rfc2136", body{"server": "10.0.0.2:53", "zone": "agents.example.com", "tsig_algorithm": "md5"},
			nil, "settings.tsig_algorithm"},
		{"rfc2136 key without secret", "dns", "rfc2136", body{"server": "10.0.0.2:53", "zone": "agents.example.com", "tsig_key_name": "k"},
			nil, "secrets.tsig_secret"},
		{"rfc2136 secret without key", "dns", "rfc2136", body{"server": "10.0.0.2:53", "zone": "agents.example.com"},
			body{"tsig_secret": "c2VjcmV0"}, "settings.tsig_key_name"},
		{"rfc2136 server", "dns", "rfc2136", body{"server": "10.0.0.2", "zone": "agents.example.com"}, nil, "settings.server"},
		{"rfc2136 zone", "dns", "rfc2136", body{"server": "10.0.0.2:53", "zone": "not a zone"}, nil, "settings.zone"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("p%d", i)
			req := body{"name": name, "type": c.typ, "settings": c.settings}
			if c.secrets != nil {
				req["secrets"] = c.secrets
			}
			path := "/api/v1/vm-providers"
			if c.kind == "dns" {
				path = "/api/v1/dns-providers"
			}
			status, out := g.call(http.MethodPost, path, req)
			switch {
			case c.field == "" && status != http.StatusCreated:
				t.Errorf("the API refused it: %d %v", status, out)
			case c.field != "" && (status != http.StatusBadRequest || out["field"] != c.field):
				t.Errorf("the API answered %d %v, want 400 naming %s", status, out, c.field)
			}

			settings, _ := json.Marshal(c.settings)
			secrets, _ := json.Marshal(c.secrets)
			p := autoscale.ProviderConfig{Name: name, Type: c.typ, Settings: settings, Secrets: secrets}
			var err error
			if c.kind == "vm" {
				var prov autoscale.Provider
				if prov, err = (vm.Providers{}).VM(p); err == nil {
					if closer, ok := prov.(interface{ Close() error }); ok {
						_ = closer.Close()
					}
				}
			} else {
				_, err = (vm.Providers{}).DNS(p)
			}
			switch {
			case c.field == "" && err != nil:
				t.Errorf("the provisioner refuses what the API accepts: %v", err)
			case c.field != "" && err == nil:
				t.Errorf("the provisioner accepts what the API refuses (%s)", c.field)
			}
		})
	}
}
