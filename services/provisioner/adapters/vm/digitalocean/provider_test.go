package digitalocean_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/digitalocean"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/digitalocean/dotest"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// start returns a stand-in with opts and a provider of it; edit changes the
// provider's config first.
func start(t *testing.T, opts dotest.Options, edit func(*digitalocean.Config)) (*dotest.Server, *digitalocean.Provider) {
	t.Helper()
	s := dotest.New(opts)
	t.Cleanup(s.Close)
	c := digitalocean.Config{
		APIURL:        s.URL,
		Region:        "nyc3",
		Size:          "s-2vcpu-4gb",
		Cores:         2,
		MemoryMB:      4096,
		Tags:          []string{"staging"},
		SSHKeys:       []string{"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa", "512190"},
		Token:         s.Token(),
		PollInterval:  time.Millisecond,
		RetryInterval: time.Millisecond,
	}
	if edit != nil {
		edit(&c)
	}
	p, err := digitalocean.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// engineTLS is a CA, and a server certificate and key it signed, as the
// autoscaler makes them.
func engineTLS(t *testing.T) autoscale.EngineTLS {
	t.Helper()
	key := func() (*ecdsa.PrivateKey, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	caKey, _ := key()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "greenroom test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, srvKeyPEM := key()
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "agent-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return autoscale.EngineTLS{
		CACert:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		ServerCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		ServerKey:  srvKeyPEM,
	}
}

func spec(t *testing.T, name string) autoscale.MachineSpec {
	return autoscale.MachineSpec{
		Name: name, Cores: 2, MemoryMB: 4096,
		Labels: map[string]string{"greenroom.managed": "true", "greenroom.agent": name},
		TLS:    engineTLS(t),
	}
}

func TestCreatePollsUntilActiveAndReturnsThePublicAddress(t *testing.T) {
	s, p := start(t, dotest.Options{ActiveAfterGets: 2}, nil)
	if p.Type() != "digitalocean" {
		t.Fatalf("Type() = %q", p.Type())
	}
	m, err := p.Create(t.Context(), spec(t, "agent_1.zone-a"))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "1" || m.Address != netip.MustParseAddr("203.0.113.1") {
		t.Fatalf("machine = %+v, want droplet 1 at 203.0.113.1", m)
	}
	if m.Endpoint() != "tcp://203.0.113.1:2376" {
		t.Fatalf("endpoint %s", m.Endpoint())
	}
	// Two GETs answered "new", the third "active".
	if n := s.Count(http.MethodGet, "/v2/droplets/1"); n != 3 {
		t.Fatalf("%d GETs of the droplet, want 3", n)
	}

	var create dotest.CreateRequest
	for _, r := range s.Requests() {
		if r.Authorization != "Bearer "+s.Token() {
			t.Fatalf("%s %s sent Authorization %q", r.Method, r.Path, r.Authorization)
		}
		if !strings.HasPrefix(r.UserAgent, "greenroom ") {
			t.Fatalf("User-Agent %q", r.UserAgent)
		}
		if r.Method == http.MethodPost {
			if create, err = r.Create(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if create.Name != "agent-1.zone-a" || create.Region != "nyc3" || create.Size != "s-2vcpu-4gb" ||
		string(create.Image) != `"debian-12-x64"` {
		t.Fatalf("create = %+v", create)
	}
	if got := strings.Join(create.Tags, " "); got != "staging greenroom greenroom-machine-agent_1:zone-a" {
		t.Fatalf("tags %q", got)
	}
	var keys []string
	for _, k := range create.SSHKeys {
		keys = append(keys, string(k))
	}
	if got := strings.Join(keys, " "); got != `"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa" 512190` {
		t.Fatalf("ssh_keys %s", got)
	}
}

func TestCreateReturnsThePrivateAddressWhenAsked(t *testing.T) {
	_, p := start(t, dotest.Options{NoPublicAddress: true}, func(c *digitalocean.Config) {
		c.UsePrivateAddress = true
	})
	m, err := p.Create(t.Context(), spec(t, "agent-1"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Address != netip.MustParseAddr("10.110.0.1") {
		t.Fatalf("address %s, want the private 10.110.0.1", m.Address)
	}
}

func TestCreateAgainFindsTheDroplet(t *testing.T) {
	s, p := start(t, dotest.Options{ActiveAfterGets: 1}, nil)
	first, err := p.Create(t.Context(), spec(t, "agent-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Create(t.Context(), spec(t, "agent-1"))
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatalf("second Create = %+v, first %+v", again, first)
	}
	if n := len(s.Droplets()); n != 1 {
		t.Fatalf("%d droplets, want 1", n)
	}
	if n := s.Count(http.MethodPost, "/v2/droplets"); n != 1 {
		t.Fatalf("%d creates, want 1", n)
	}
	// Another name is another droplet.
	other, err := p.Create(t.Context(), spec(t, "agent-2"))
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == first.ID || len(s.Droplets()) != 2 {
		t.Fatalf("agent-2 = %+v; droplets %d", other, len(s.Droplets()))
	}
}

func TestWrongTokenIsUnauthorized(t *testing.T) {
	s, p := start(t, dotest.Options{}, func(c *digitalocean.Config) { c.Token = "wrong" })
	_, err := p.Create(t.Context(), spec(t, "agent-1"))
	if err == nil {
		t.Fatal("Create with a wrong token succeeded")
	}
	for _, want := range []string{"401 Unauthorized", "Unable to authenticate you", "request id dotest-"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	var apiErr *digitalocean.APIError
	var godoErr *godo.ErrorResponse
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || !errors.As(err, &godoErr) {
		t.Fatalf("error %v is not the API's 401", err)
	}
	// Not retried, and nothing made.
	if n := len(s.Requests()); n != 1 || len(s.Droplets()) != 0 {
		t.Fatalf("%d requests, %d droplets", n, len(s.Droplets()))
	}
	if err := p.Delete(t.Context(), "1"); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Fatalf("Delete with a wrong token: %v", err)
	}
}

func TestUnprocessableSurfacesTheAPIMessage(t *testing.T) {
	s, p := start(t, dotest.Options{Regions: []string{"ams3", "fra1"}}, func(c *digitalocean.Config) {
		c.Region = "nyc3"
	})
	_, err := p.Create(t.Context(), spec(t, "agent-1"))
	if err == nil {
		t.Fatal("Create in an unavailable region succeeded")
	}
	for _, want := range []string{"creating droplet agent-1", "422 Unprocessable Entity", "region nyc3 is not available", "request id dotest-"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if n := s.Count(http.MethodPost, "/v2/droplets"); n != 1 {
		t.Fatalf("%d creates, want 1 (a 422 is not retried)", n)
	}
}

func TestRateLimitAndServerErrorsAreRetried(t *testing.T) {
	s, p := start(t, dotest.Options{}, nil)
	ctx := t.Context()
	mtag, err := digitalocean.MachineTag("agent-1")
	if err != nil {
		t.Fatal(err)
	}
	// The look for the droplet is answered 429 twice, then 200.
	s.Fail(http.StatusTooManyRequests, 2)
	m, err := p.Create(ctx, spec(t, "agent-1"))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "1" || len(s.Droplets()) != 1 {
		t.Fatalf("machine %+v, droplets %d", m, len(s.Droplets()))
	}
	var statuses []int
	for _, r := range s.Requests()[:4] {
		statuses = append(statuses, r.Status)
	}
	if r := s.Requests()[0]; r.Path != "/v2/droplets" || r.Query.Get("tag_name") != mtag {
		t.Fatalf("first request %s %s?%v", r.Method, r.Path, r.Query)
	}
	if fmt.Sprint(statuses) != "[429 429 200 202]" {
		t.Fatalf("statuses %v, want two 429s, the list, the create", statuses)
	}

	// A create that made its droplet but was answered 500 is not sent
	// again: the droplet is found first.
	s.Inject(dotest.Fault{Method: http.MethodPost, Path: "/v2/droplets", Status: http.StatusInternalServerError, Done: true})
	m2, err := p.Create(ctx, spec(t, "agent-2"))
	if err != nil {
		t.Fatal(err)
	}
	if m2.ID != "2" || len(s.Droplets()) != 2 || s.Count(http.MethodPost, "/v2/droplets") != 2 {
		t.Fatalf("machine %+v, %d droplets, %d creates", m2, len(s.Droplets()), s.Count(http.MethodPost, "/v2/droplets"))
	}
	// One that did not is sent again.
	s.Inject(dotest.Fault{Method: http.MethodPost, Path: "/v2/droplets", Status: http.StatusBadGateway})
	m3, err := p.Create(ctx, spec(t, "agent-3"))
	if err != nil {
		t.Fatal(err)
	}
	if m3.ID != "3" || len(s.Droplets()) != 3 || s.Count(http.MethodPost, "/v2/droplets") != 4 {
		t.Fatalf("machine %+v, %d droplets, %d creates", m3, len(s.Droplets()), s.Count(http.MethodPost, "/v2/droplets"))
	}
	// A GET of the booting droplet answered 503 is retried too.
	s.Inject(dotest.Fault{Method: http.MethodGet, Path: "/v2/droplets/4", Status: http.StatusServiceUnavailable})
	if _, err := p.Create(ctx, spec(t, "agent-4")); err != nil {
		t.Fatal(err)
	}

	// After Attempts, the error says how many there were.
	s.Fail(http.StatusServiceUnavailable, digitalocean.Attempts)
	_, err = p.Create(ctx, spec(t, "agent-5"))
	if err == nil || !strings.Contains(err.Error(), "(4 attempts)") || !strings.Contains(err.Error(), "503 Service Unavailable") {
		t.Fatalf("after %d 503s: %v", digitalocean.Attempts, err)
	}
}

func TestDeleteThenDeleteAgain(t *testing.T) {
	s, p := start(t, dotest.Options{}, nil)
	m, err := p.Create(t.Context(), spec(t, "agent-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(t.Context(), m.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Droplets()); n != 0 {
		t.Fatalf("%d droplets after Delete", n)
	}
	if err := p.Delete(t.Context(), m.ID); err != nil {
		t.Fatalf("Delete of a deleted droplet: %v", err)
	}
	if err := p.Delete(t.Context(), "agent-1"); err == nil {
		t.Fatal("Delete of a name, not an id, succeeded")
	}
	// A delete answered 502 after it deleted the droplet is retried, and
	// its 404 is success.
	m, err = p.Create(t.Context(), spec(t, "agent-1"))
	if err != nil {
		t.Fatal(err)
	}
	s.Inject(dotest.Fault{Method: http.MethodDelete, Status: http.StatusBadGateway, Done: true})
	if err := p.Delete(t.Context(), m.ID); err != nil || len(s.Droplets()) != 0 {
		t.Fatalf("Delete after a 502: %v, %d droplets", err, len(s.Droplets()))
	}
}

func TestDeleteRefusesADropletGreenroomDidNotMake(t *testing.T) {
	s, p := start(t, dotest.Options{}, nil)
	// Someone's own droplet in the same account.
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v2/droplets",
		strings.NewReader(`{"name":"db-1","region":"nyc3","size":"s-1vcpu-1gb","image":"debian-12-x64","tags":["prod"]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Droplet godo.Droplet }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("stand-in create: %s", resp.Status)
	}
	err = p.Delete(t.Context(), "1")
	if err == nil || !strings.Contains(err.Error(), "not tagged greenroom") {
		t.Fatalf("Delete of an untagged droplet: %v", err)
	}
	if len(s.Droplets()) != 1 {
		t.Fatal("the droplet was deleted")
	}
}

func TestBootTimeoutNamesTheDroplet(t *testing.T) {
	_, p := start(t, dotest.Options{ActiveAfterGets: 1 << 30}, func(c *digitalocean.Config) {
		c.BootTimeout = "30ms"
	})
	m, err := p.Create(t.Context(), spec(t, "agent-1"))
	if err == nil {
		t.Fatal("Create of a droplet that never becomes active succeeded")
	}
	for _, want := range []string{"droplet 1 (agent-1) never became active", `"new"`} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if !errors.Is(err, autoscale.ErrNoAddress) || m.ID != "1" || m.Address.IsValid() {
		t.Fatalf("machine %+v, error %v: want droplet 1 without an address and ErrNoAddress", m, err)
	}
}

func TestCallerContextEndsTheWait(t *testing.T) {
	s, p := start(t, dotest.Options{ActiveAfterGets: 1 << 30}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	// Cancel once the droplet exists and is being polled.
	go func() {
		for s.Count(http.MethodGet, "/v2/droplets/1") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	m, err := p.Create(ctx, spec(t, "agent-1"))
	if !errors.Is(err, autoscale.ErrNoAddress) || !errors.Is(err, context.Canceled) || m.ID != "1" {
		t.Fatalf("machine %+v, error %v", m, err)
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	good := digitalocean.Config{Region: "nyc3", Size: "s-2vcpu-4gb", Cores: 2, MemoryMB: 4096, Token: "t"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, edit := range map[string]func(*digitalocean.Config){
		"region":       func(c *digitalocean.Config) { c.Region = "" },
		"size":         func(c *digitalocean.Config) { c.Size = " " },
		"token":        func(c *digitalocean.Config) { c.Token = "" },
		"cores":        func(c *digitalocean.Config) { c.Cores = 0 },
		"memory_mb":    func(c *digitalocean.Config) { c.MemoryMB = -1 },
		"gpus":         func(c *digitalocean.Config) { c.GPUs = -1 },
		"boot_timeout": func(c *digitalocean.Config) { c.BootTimeout = "ten minutes" },
		"api_url":      func(c *digitalocean.Config) { c.APIURL = "http://api.digitalocean.com/" },
		"vpc_uuid":     func(c *digitalocean.Config) { c.VPCUUID = "default" },
		"tags":         func(c *digitalocean.Config) { c.Tags = []string{"team=a"} },
		"ssh_keys":     func(c *digitalocean.Config) { c.SSHKeys = []string{""} },
	} {
		c := good
		edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "digitalocean "+field+":") {
			t.Errorf("%s: Validate() = %v", field, err)
		}
		if _, err := digitalocean.New(c); err == nil {
			t.Errorf("%s: New accepted the config", field)
		}
	}
	// The JSON is the API's settings, the token among them.
	var c digitalocean.Config
	err := json.Unmarshal([]byte(`{"api_url":"http://127.0.0.1:1/","region":"nyc3","size":"s-2vcpu-4gb",
		"image":"debian-12-x64","ssh_keys":["1"],"vpc_uuid":"5a4981aa-9653-4bd1-bef5-d6bff52042e4","tags":["a"],
		"cores":2,"memory_mb":4096,"gpus":0,"use_private_address":true,"boot_timeout":"5m","token":"secret"}`), &c)
	if err != nil || c.Validate() != nil || !c.UsePrivateAddress || c.Token != "secret" {
		t.Fatalf("config %+v: %v", c, err)
	}
	if strings.Contains(c.String(), "secret") {
		t.Fatalf("String() shows the token: %s", c)
	}
}

func TestMachineNames(t *testing.T) {
	for name, want := range map[string][2]string{
		"agent-1":        {"agent-1", "greenroom-machine-agent-1"},
		"pool_a.agent_3": {"pool-a.agent-3", "greenroom-machine-pool_a:agent_3"},
	} {
		d, err := digitalocean.DropletName(name)
		if err != nil || d != want[0] {
			t.Errorf("DropletName(%q) = %q, %v", name, d, err)
		}
		tag, err := digitalocean.MachineTag(name)
		if err != nil || tag != want[1] {
			t.Errorf("MachineTag(%q) = %q, %v", name, tag, err)
		}
	}
	for _, bad := range []string{"", "-a", "a b", "a/b", "agent-"} {
		if _, err := digitalocean.DropletName(bad); err == nil {
			t.Errorf("DropletName(%q) accepted", bad)
		}
	}
}
