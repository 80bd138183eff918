package digitalocean

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// Where the machine's engine finds its TLS material.
const (
	TLSDir      = "/etc/docker/tls"
	CACertPath  = TLSDir + "/ca.pem"
	CertPath    = TLSDir + "/cert.pem"
	KeyPath     = TLSDir + "/key.pem"
	DropInPath  = "/etc/systemd/system/docker.service.d/greenroom.conf"
	metadataIP  = "169.254.169.254"
	dockerdPath = "/usr/sbin/dockerd"
)

// DebianExecStart is the ExecStart of docker.service in Debian 12's
// docker.io package (/lib/systemd/system/docker.service): the engine takes
// its Unix socket from systemd's docker.socket (-H fd://) and uses the
// containerd of Debian's containerd package. The drop-in keeps all of it
// and adds the TLS listener, so that the machine's engine is Debian's
// engine plus one socket.
const DebianExecStart = dockerdPath + " -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS"

// DockerdTLSFlags are the flags the drop-in adds to DebianExecStart: a TCP
// listener on autoscale.EnginePort that serves the spec's certificate and
// accepts only clients whose certificate the CA signed.
var DockerdTLSFlags = []string{
	"-H", "tcp://0.0.0.0:" + strconv.Itoa(autoscale.EnginePort),
	"--tlsverify",
	"--tlscacert=" + CACertPath,
	"--tlscert=" + CertPath,
	"--tlskey=" + KeyPath,
}

// CloudConfig is the part of cloud-init's #cloud-config schema that
// UserData writes (https://cloudinit.readthedocs.io/en/latest/reference/modules.html).
// cloud-init runs write_files in its init stage, before packages are
// installed in its final stage, so Debian's docker.io starts for the first
// time with the drop-in and the certificates already in place; runcmd, the
// last step, restarts it anyway, for an image that has Docker already.
type CloudConfig struct {
	PackageUpdate bool        `yaml:"package_update"`
	Packages      []string    `yaml:"packages"`
	WriteFiles    []WriteFile `yaml:"write_files"`
	RunCmd        []string    `yaml:"runcmd"`
}

// WriteFile is one entry of cloud-init's write_files.
type WriteFile struct {
	Path        string `yaml:"path"`
	Content     string `yaml:"content"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
}

// File returns the entry of write_files for path, or false.
func (c CloudConfig) File(path string) (WriteFile, bool) {
	for _, f := range c.WriteFiles {
		if f.Path == path {
			return f, true
		}
	}
	return WriteFile{}, false
}

// UserData returns the cloud-init user data of a machine for spec: a
// #cloud-config document that installs Debian's docker.io, writes the
// engine's CA, certificate and key (the key readable by root only), and a
// systemd drop-in that restarts dockerd with DockerdTLSFlags. The machine
// needs nothing else to join: the autoscaler finds its engine answering
// over TLS on autoscale.EnginePort and registers it as an agent.
func UserData(spec autoscale.MachineSpec) (string, error) {
	if err := checkTLS(spec.TLS); err != nil {
		return "", err
	}
	cfg := CloudConfig{
		PackageUpdate: true,
		Packages:      []string{"docker.io"},
		WriteFiles: []WriteFile{
			{Path: CACertPath, Content: string(spec.TLS.CACert), Owner: "root:root", Permissions: "0644"},
			{Path: CertPath, Content: string(spec.TLS.ServerCert), Owner: "root:root", Permissions: "0644"},
			{Path: KeyPath, Content: string(spec.TLS.ServerKey), Owner: "root:root", Permissions: "0600"},
			{Path: DropInPath, Content: DropIn(), Owner: "root:root", Permissions: "0644"},
		},
		RunCmd: []string{"systemctl daemon-reload", "systemctl restart docker"},
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("writing cloud-init user data: %w", err)
	}
	return "#cloud-config\n" + string(out), nil
}

// DropIn returns the systemd drop-in for docker.service. Its empty
// ExecStart= line clears the unit's own ExecStart first: a service of
// Type=notify may have only one, and a second ExecStart= would otherwise be
// added to the first and refused. ExecStartPost then stops the session
// containers from reaching DigitalOcean's metadata service, which serves
// the user data, and with it the engine's private key, to whoever asks from
// the machine; the rule goes in DOCKER-USER, the chain Docker leaves to the
// administrator, and is added once (iptables -C checks for it) on every
// start of the engine. Its leading "-" keeps a failure there from failing
// the engine.
func DropIn() string {
	rule := "DOCKER-USER -d " + metadataIP + "/32 -j DROP"
	return "# Written by Greenroom's digitalocean provider (cloud-init).\n" +
		"[Service]\n" +
		"ExecStart=\n" +
		"ExecStart=" + DebianExecStart + " " + strings.Join(DockerdTLSFlags, " ") + "\n" +
		"ExecStartPost=-/bin/sh -c 'iptables -C " + rule + " 2>/dev/null || iptables -I " + rule + "'\n"
}

// checkTLS fails when spec's TLS material is missing.
func checkTLS(t autoscale.EngineTLS) error {
	var errs []error
	for _, f := range []struct {
		name string
		pem  []byte
	}{{"CA certificate", t.CACert}, {"server certificate", t.ServerCert}, {"server key", t.ServerKey}} {
		if !strings.Contains(string(f.pem), "-----BEGIN ") {
			errs = append(errs, fmt.Errorf("the machine's TLS %s is not PEM", f.name))
		}
	}
	return errors.Join(errs...)
}
