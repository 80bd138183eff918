package docker

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"github.com/greenroom-dev/greenroom/libs/nettest"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// newBlackHole is a Docker endpoint that accepts TCP connections and
// never answers, until Release; closed when the test ends.
func newBlackHole(t *testing.T) *nettest.BlackHole {
	t.Helper()
	b, err := nettest.ListenBlackHole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// localEndpoint is the local engine, as an agent's docker_endpoint.
func localEndpoint() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return client.DefaultDockerHost
}

type forResult struct {
	eng *Engine
	err error
}

func goFor(e *Engines, endpoint string) <-chan forResult {
	ch := make(chan forResult, 1)
	go func() {
		eng, err := e.For(endpoint)
		ch <- forResult{eng, err}
	}()
	return ch
}

// One engine that accepts and never answers holds up only the calls for
// it: the local engine is contacted and used while the first contact with
// the black hole is stuck, a second call for the black hole shares that
// contact instead of dialling again, and once it failed, calls within the
// backoff get the remembered error without dialling.
func TestABlackHoleEngineDelaysOnlyItsOwnCalls(t *testing.T) {
	t.Parallel()
	hole := newBlackHole(t)
	// The ping timeout is far longer than the test: the black hole's
	// contact ends when the test releases it, never on its own. The
	// backoff is long enough to cover the rest of the test.
	engines := NewEnginesWith(EnginesConfig{PingTimeout: 2 * time.Minute, FailureBackoffMin: time.Hour, FailureBackoffMax: 4 * time.Hour})
	t.Cleanup(engines.Close)
	waiting := make(chan string, 1)
	engines.testHookWait = func(endpoint string) { waiting <- endpoint }

	stuck := goFor(engines, hole.Endpoint())
	<-hole.First() // the contact is under way, and blocked

	// A second call for the black hole waits for the contact under way.
	shared := goFor(engines, hole.Endpoint())
	if ep := <-waiting; ep != hole.Endpoint() {
		t.Fatalf("a call waited for %s, want %s", ep, hole.Endpoint())
	}

	// The local engine: its first contact (client, ping, API version
	// negotiation) and a call on it, all while the black hole is stuck.
	healthy := make(chan error, 1)
	go func() {
		eng, err := engines.For(localEndpoint())
		if err == nil {
			_, err = eng.ListByLabels(context.Background(), map[string]string{domain.LabelSession: "no-such-session"})
		}
		healthy <- err
	}()
	select {
	case err := <-healthy:
		if err != nil {
			t.Fatalf("the local engine, while the black hole is stuck: %v", err)
		}
	case r := <-stuck:
		t.Fatalf("the call for the black hole ended (%v) before the one for the local engine: it waited for it", r.err)
	}
	select {
	case r := <-stuck:
		t.Fatalf("the call for the black hole ended (%v) before it was released", r.err)
	case r := <-shared:
		t.Fatalf("the second call for the black hole ended (%v) before it was released", r.err)
	default:
	}
	if n := hole.Accepted(); n != 1 {
		t.Fatalf("the black hole was dialled %d times while its first contact was under way, want 1", n)
	}

	// The API version was negotiated down to the local engine's.
	local, err := engines.For(localEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	v, err := local.c.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cv := local.c.ClientVersion(); versions.GreaterThan(cv, v.APIVersion) {
		t.Errorf("client API version %s is newer than the engine's %s: not negotiated", cv, v.APIVersion)
	}

	hole.Release()
	first := <-stuck
	if first.err == nil || first.eng != nil {
		t.Fatalf("the black hole's contact: engine %v, error %v; want an error", first.eng, first.err)
	}
	if second := <-shared; second.err != first.err {
		t.Errorf("the call that waited got %v, want the shared contact's %v", second.err, first.err)
	}
	dialled := hole.Accepted()

	// Within the backoff: the remembered error, at once, without dialling.
	_, err = engines.For(hole.Endpoint())
	if !errors.Is(err, first.err) {
		t.Fatalf("a call within the backoff got %v, want the remembered %v", err, first.err)
	}
	if n := hole.Accepted(); n != dialled {
		t.Fatalf("a call within the backoff dialled the black hole (%d accepts, %d before)", n, dialled)
	}
	// The local engine is unaffected.
	if again, err := engines.For(localEndpoint()); err != nil || again != local {
		t.Fatalf("the local engine after the black hole failed: %v, %v; want the engine kept", again, err)
	}

	// Past the backoff, the black hole is contacted again, and remembered
	// for twice as long.
	engines.mu.Lock()
	engines.endpoints[hole.Endpoint()].retryAt = time.Now().Add(-time.Second)
	engines.mu.Unlock()
	if _, err := engines.For(hole.Endpoint()); err == nil || errors.Is(err, first.err) {
		t.Fatalf("the call past the backoff got %v, want a new contact's error", err)
	}
	if n := hole.Accepted(); n == dialled {
		t.Fatal("the call past the backoff did not contact the black hole again")
	}
	engines.mu.Lock()
	st := engines.endpoints[hole.Endpoint()]
	failures, left := st.failures, time.Until(st.retryAt)
	engines.mu.Unlock()
	if failures != 2 || left <= time.Hour {
		t.Errorf("after two failed contacts: %d failures, remembered for %v more; want 2 and over an hour", failures, left)
	}
}

// Close ends a contact under way with a black hole, and For fails after it.
func TestCloseEndsAStuckContact(t *testing.T) {
	t.Parallel()
	hole := newBlackHole(t)
	engines := NewEnginesWith(EnginesConfig{PingTimeout: 2 * time.Minute})
	stuck := goFor(engines, hole.Endpoint())
	<-hole.First()
	engines.Close()
	if r := <-stuck; !errors.Is(r.err, ErrEnginesClosed) {
		t.Fatalf("the contact under way at Close got %v, want %v", r.err, ErrEnginesClosed)
	}
	if _, err := engines.For(localEndpoint()); !errors.Is(err, ErrEnginesClosed) {
		t.Fatalf("For after Close got %v, want %v", err, ErrEnginesClosed)
	}
}

func TestFailureBackoffDoublesUpToItsMaximum(t *testing.T) {
	t.Parallel()
	cfg := EnginesConfig{FailureBackoffMin: time.Second, FailureBackoffMax: 5 * time.Second}
	cfg.withDefaults()
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 40: 5 * time.Second} {
		if got := cfg.backoff(failures); got != want {
			t.Errorf("backoff after %d failures = %v, want %v", failures, got, want)
		}
	}
	def := EnginesConfig{}
	def.withDefaults()
	if def.PingTimeout != PingTimeoutDefault || def.FailureBackoffMin != FailureBackoffMinDefault || def.FailureBackoffMax != FailureBackoffMaxDefault {
		t.Errorf("defaults: %+v", def)
	}
}
