package autoscale_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/pki"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// The work on one agent, with the store, providers and engine in memory:
// what the autoscaler does when a step goes wrong. The happy paths run on
// real machines (service.TestAPoolScalesItsAgentsUpAndDownWithRealMachines).

// store records the calls the work makes; machineMade is what MachineMade
// answers.
type store struct {
	autoscale.Store
	mu          sync.Mutex
	calls       []string
	machineMade error
	failed      []failure
}

type failure struct {
	cause   string
	abandon bool
}

func (s *store) record(call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
}

func (s *store) RenewLease(context.Context, string, string, time.Duration) error { return nil }
func (s *store) MachineMade(_ context.Context, _, _ string, m autoscale.Machine) error {
	s.record("MachineMade " + m.ID)
	return s.machineMade
}
func (s *store) AgentReady(context.Context, string, string) error { s.record("AgentReady"); return nil }
func (s *store) AgentGone(context.Context, string, string) error  { s.record("AgentGone"); return nil }
func (s *store) Images(context.Context) ([]string, error)         { return []string{"demo:1"}, nil }
func (s *store) AgentFailed(_ context.Context, _, _ string, cause error, abandon bool, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, failure{cause.Error(), abandon})
	return nil
}

// cloud is a VM provider and a DNS provider in memory.
type cloud struct {
	mu       sync.Mutex
	machines map[string]bool
	records  map[string]netip.Addr
	dnsErr   error
}

func (c *cloud) Type() string { return "memory" }
func (c *cloud) Create(_ context.Context, spec autoscale.MachineSpec) (autoscale.Machine, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.machines["m-"+spec.Name] = true
	return autoscale.Machine{ID: "m-" + spec.Name, Address: netip.MustParseAddr("10.0.0.7")}, nil
}
func (c *cloud) Delete(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.machines, id)
	return nil
}
func (c *cloud) Register(_ context.Context, host string, addr netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records[host] = addr
	return nil
}
func (c *cloud) Remove(_ context.Context, host string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dnsErr != nil {
		return c.dnsErr
	}
	delete(c.records, host)
	return nil
}

type providers struct{ c *cloud }

func (p providers) VM(autoscale.ProviderConfig) (autoscale.Provider, error) { return p.c, nil }
func (p providers) DNS(autoscale.ProviderConfig) (autoscale.DNS, error)     { return p.c, nil }
func (p providers) Size(autoscale.ProviderConfig) (domain.Resources, int, error) {
	return domain.Resources{MilliCores: 2000, MemoryMB: 2048}, 0, nil
}

// engine answers its pings once up is true.
type engine struct{ up func() bool }

func (e engine) Ping(context.Context) error {
	if e.up() {
		return nil
	}
	return errors.New("connection refused")
}
func (e engine) LoadImages(_ context.Context, refs []string) ([]string, error) { return refs, nil }
func (e engine) Close() error                                                  { return nil }

func newAutoscaler(t *testing.T, s *store, c *cloud, up func() bool, boot time.Duration) *autoscale.Autoscaler {
	t.Helper()
	dial := func(string, *tls.Config) (autoscale.Engine, error) { return engine{up: up}, nil }
	return autoscale.New(autoscale.Config{Owner: "test", BootTimeout: boot, Lease: time.Minute}, s, providers{c}, dial, nil, zap.NewNop(), nil, nil)
}

// work is an agent to make or delete with a provider whose CA is real.
func work(t *testing.T, lifecycle string) autoscale.Work {
	t.Helper()
	caCert, caKey, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.Issue(caCert, caKey, pki.Client, "p", nil, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return autoscale.Work{AgentID: "a1", Name: "pool-a1", Lifecycle: lifecycle, Since: time.Now(), Started: time.Now(),
		MachineID: "m-pool-a1", Endpoint: "tcp://10.0.0.7:2376",
		VM:  autoscale.ProviderConfig{Name: "vm", CACert: string(caCert), CAKey: string(caKey), ClientCert: string(cert), ClientKey: string(key)},
		DNS: &autoscale.ProviderConfig{Name: "dns"}}
}

func TestAReplicaThatLostItsLeaseDeletesTheMachineItMade(t *testing.T) {
	s := &store{machineMade: autoscale.ErrLeaseLost}
	c := &cloud{machines: map[string]bool{}, records: map[string]netip.Addr{}}
	newAutoscaler(t, s, c, func() bool { return true }, time.Minute).Work(context.Background(), work(t, domain.LifecycleProvisioning))
	if len(c.machines) != 0 {
		t.Errorf("machines left: %v; the one made after the lease was lost must be deleted", c.machines)
	}
	if slices.Contains(s.calls, "AgentReady") || len(c.records) != 0 {
		t.Errorf("calls %v, records %v: nothing may follow a lost lease", s.calls, c.records)
	}
}

func TestAMachineThatNeverAnswersIsAbandonedAfterTheBootTimeout(t *testing.T) {
	s := &store{}
	c := &cloud{machines: map[string]bool{}, records: map[string]netip.Addr{}}
	w := work(t, domain.LifecycleProvisioning)
	w.Started = time.Now().Add(-time.Minute) // taken up a minute ago; 2 s left
	newAutoscaler(t, s, c, func() bool { return false }, time.Minute+2*time.Second).Work(context.Background(), w)
	if len(s.failed) != 1 || !s.failed[0].abandon {
		t.Fatalf("failures %+v, want one that abandons the agent", s.failed)
	}
	if slices.Contains(s.calls, "AgentReady") {
		t.Errorf("calls %v: an engine that never answered made the agent active", s.calls)
	}
}

func TestAnEngineThatAnswersLateWithinTheTimeoutIsReady(t *testing.T) {
	s := &store{}
	c := &cloud{machines: map[string]bool{}, records: map[string]netip.Addr{}}
	pings := 0
	var mu sync.Mutex
	up := func() bool { mu.Lock(); defer mu.Unlock(); pings++; return pings > 3 }
	newAutoscaler(t, s, c, up, time.Minute).Work(context.Background(), work(t, domain.LifecycleProvisioning))
	if !slices.Equal(s.calls, []string{"MachineMade m-pool-a1", "AgentReady"}) || len(s.failed) != 0 {
		t.Fatalf("calls %v, failures %+v", s.calls, s.failed)
	}
	if c.records["pool-a1"] != netip.MustParseAddr("10.0.0.7") {
		t.Errorf("records %v, want pool-a1 at the machine's address", c.records)
	}
}

func TestADNSServerThatRefusesDoesNotKeepTheMachine(t *testing.T) {
	s := &store{}
	c := &cloud{machines: map[string]bool{"m-pool-a1": true}, records: map[string]netip.Addr{"pool-a1": netip.MustParseAddr("10.0.0.7")},
		dnsErr: errors.New("NOTAUTH")}
	a := newAutoscaler(t, s, c, func() bool { return true }, time.Minute)
	a.Work(context.Background(), work(t, domain.LifecycleDeleting))
	if len(c.machines) != 0 {
		t.Errorf("machines %v: the machine must go even when its record cannot", c.machines)
	}
	if slices.Contains(s.calls, "AgentGone") || len(s.failed) != 1 || s.failed[0].abandon {
		t.Fatalf("calls %v, failures %+v: the agent stays deleting, its record to be tried again", s.calls, s.failed)
	}
	// The DNS server answers again: the next attempt removes the record,
	// deletes the machine again (gone: nil) and records the agent gone.
	c.dnsErr = nil
	a.Work(context.Background(), work(t, domain.LifecycleDeleting))
	if !slices.Contains(s.calls, "AgentGone") || len(c.records) != 0 {
		t.Errorf("calls %v, records %v", s.calls, c.records)
	}
}
