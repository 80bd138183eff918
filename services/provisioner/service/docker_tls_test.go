package service_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/tlstest"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// tlsEngine is a Docker agent reached over TLS with client certificates,
// as `dockerd --tlsverify` serves one: a TLS listener on loopback that
// requires a client certificate signed by ca and passes the connection on
// to the local engine's socket.
func tlsEngine(t *testing.T, ca *tlstest.CA) string {
	t.Helper()
	socket := strings.TrimPrefix(dockerEndpoint(), "unix://")
	if strings.Contains(socket, "://") {
		t.Fatalf("the TLS engine test needs a unix:// local engine, DOCKER_HOST is %s", dockerEndpoint())
	}
	server := ca.Server(t, "docker-engine", "127.0.0.1")
	pair, err := tls.LoadX509KeyPair(server.Cert, server.Key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				up, err := net.Dial("unix", socket)
				if err != nil {
					_ = c.Close()
					return
				}
				mu.Lock()
				conns = append(conns, c, up)
				mu.Unlock()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
				_ = c.Close()
				_ = up.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tcp://" + ln.Addr().String()
}

// Issue (security): a tcp:// Docker agent is reached over TLS with the
// provisioner's client certificate (GREENROOM_DOCKER_TLS_*), and an agent
// that verifies its clients refuses anyone without one.
func TestTCPDockerAgentOverTLSWithClientCertificate(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, t.TempDir(), "greenroom-test-ca")
	endpoint := tlsEngine(t, ca)
	cert := ca.Client(t, "greenroom-provisioner")
	tlsFiles := settings.DockerTLS{CA: ca.File, Cert: cert.Cert, Key: cert.Key}

	// The engine refuses a client without a certificate, and one that
	// does not speak TLS.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for name, opts := range map[string][]client.Opt{
		"without a client certificate": {client.WithHost(endpoint), client.WithTLSClientConfig(ca.File, "", "")},
		"without TLS":                  {client.WithHost(endpoint)},
	} {
		c, err := client.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Ping(ctx, client.PingOptions{}); err == nil {
			t.Errorf("the TLS engine answered a client %s", name)
		}
		_ = c.Close()
	}

	// The provisioner, with its certificate, makes a session there.
	e := newEnv(t, envOptions{cfg: service.Config{Engines: docker.EnginesConfig{TLS: tlsFiles}}})
	f := fixture{zone: "zone-a", agent: "agent-tls", wsName: "demo", user: "alice"}
	f.zoneID = e.addZone(f.zone, "least_load")
	f.agentID = e.addAgentAt(f.zoneID, f.agent, endpoint, 4, 4096)
	f.workspaceID = e.addWorkspace(f.wsName, workspaceOptions{cores: 0.5, memoryMB: 64, initDelay: "0s"})
	f.userID = e.addUser(f.user)
	req := e.insertOnDemand(f)
	e.deliverRequest(req)
	ready := decode[events.SessionReady](t, e.waitEvent(events.TypeSessionReady, 90*time.Second, dataIs("request_id", req.RequestID)))
	if ready.Agent != f.agent || ready.ContainerID == "" {
		t.Fatalf("session.ready = %+v, want a container on %s", ready, f.agent)
	}
	if s := e.session(req.SessionID); s.Status != sessions.Running {
		t.Errorf("session %s is %s, want running", req.SessionID, s.Status)
	}
	if _, err := e.inspect(ready.ContainerID); err != nil {
		t.Errorf("the session's container %s is not on the engine: %v", ready.ContainerID, err)
	}

	// A bad file stops the provisioner before it starts, naming the
	// setting.
	_, err := service.New(e.deps, service.Config{Engines: docker.EnginesConfig{TLS: settings.DockerTLS{CA: ca.File, Cert: cert.Cert}}})
	if err == nil || !strings.Contains(err.Error(), settings.DockerTLSKeyEnv) {
		t.Errorf("a client certificate without its key: %v, want an error naming %s", err, settings.DockerTLSKeyEnv)
	}
}
