package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dockerclient "github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
)

const (
	rollScenarioName = "pool roll"
	// rollInterval spaces the requests made during a roll of a pool of
	// 10: slower than the pool refills on this machine, so a pool that
	// rolls by surge never runs dry; the quick run's pool of 5 gets half
	// the rate.
	rollInterval = 500 * time.Millisecond
)

// rollScenario measures a pool following its configuration (issue 10
// point 4): a full pool of the demo image (no initialisation delay), its
// workspace's image changed through the API to a second tag of the same
// image, and requests at a steady rate through the bus from the change
// on, until every staged session of the pool is on the new image and no
// session of the old one is left staged or provisioning (the roll); then,
// with the requests stopped, until the pool is back at its size. The
// provisioner rolls by surge, so every request of the roll should be
// served staged. Every wait is bounded; the requests are bounded in count
// too, so that a roll that never ends leaves few containers running.
func rollScenario(quick bool) error {
	size, timeout, interval := 10, 3*time.Minute, rollInterval
	if quick {
		size, timeout, interval = 5, 2*time.Minute, 2*rollInterval
	}
	// One request per interval, at most twelve per staged session.
	maxRequests := min(int(timeout/interval), 12*size)
	e, err := startEnv(envFull)
	if err != nil {
		return err
	}
	dc, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		e.close()
		return err
	}
	// The second tag of the demo image; it goes after the env's
	// containers, which are made from it.
	newImage := "greenroom/demo-workspace:bench-roll-" + e.Label
	defer func() {
		e.close()
		if _, err := dc.ImageRemove(context.Background(), newImage, dockerclient.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "bench: removing image %s: %v\n", newImage, err)
		}
		_ = dc.Close()
	}()
	if _, _, err := e.fixture(); err != nil {
		return err
	}
	nc, err := nats.Connect(e.NatsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	request, closeClient, err := e.busRequester(nc, nil)
	if err != nil {
		return err
	}
	defer closeClient()

	ws := e.workspace("demo-roll")
	ws["run_config"] = map[string]any{"environment": map[string]any{"GREENROOM_DEMO_INIT_DELAY": "0s"}}
	if _, err := e.create("/api/v1/workspaces", ws); err != nil {
		return err
	}
	scID, err := e.create("/api/v1/staging-configs", e.stagingConfig("demo-roll", size))
	if err != nil {
		return err
	}
	if _, err := e.waitStaged(scID, size, 180*time.Second); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	if _, err := dc.ImageTag(ctx, dockerclient.ImageTagOptions{Source: demoImage, Target: newImage}); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", demoImage, newImage, err)
	}
	time.Sleep(time.Second) // the last container's start settles

	// The change, then requests at a steady rate until the roll is over.
	start := time.Now()
	status, out, err := e.call(http.MethodPatch, "/api/v1/workspaces/"+url.PathEscape(e.name("demo-roll")), map[string]any{"image": newImage})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("PATCH workspace image: %d %v", status, out)
	}
	patched := time.Now()

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		issued   int
		staged   int
		onDemand int
		failures []string
	)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 0; n < maxRequests; n++ {
			mu.Lock()
			issued++
			mu.Unlock()
			wg.Go(func() {
				d, s, err := request("demo-roll")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case s.Origin == "staged":
					staged++
					lat = append(lat, d)
				default:
					onDemand++
					lat = append(lat, d)
				}
			})
			select {
			case <-t.C:
			case <-done:
				return
			case <-stopping:
				return
			}
		}
	}()

	images := map[string]string{} // container id → Config.Image
	lowest := -1
	var rolled time.Duration
	var last string
	for {
		if interrupted() {
			close(done)
			wg.Wait()
			return errors.New("interrupted")
		}
		if time.Since(start) > timeout {
			close(done)
			wg.Wait()
			return fmt.Errorf("pool of %d not rolled to %s within %s: %s", size, newImage, timeout, last)
		}
		n, ok, why := rollState(ctx, e, dc, scID, newImage, patched, images)
		if n >= 0 && (lowest < 0 || n < lowest) {
			lowest = n
		}
		last = why
		if ok {
			rolled = time.Since(start)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	// The requests stopped: the pool fills back to its size, all of it of
	// the new image.
	var full time.Duration
	for {
		if interrupted() {
			return errors.New("interrupted")
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("pool of %d rolled to %s but not back to %d staged within %s: %s", size, newImage, size, timeout, last)
		}
		n, ok, why := rollState(ctx, e, dc, scID, newImage, patched, images)
		last = why
		if ok && n >= size {
			full = time.Since(start)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}

	mu.Lock()
	defer mu.Unlock()
	if issued >= maxRequests {
		note("%s: the %d requests of its bound were made before the pool had rolled", rollScenarioName, maxRequests)
	}
	if len(failures) > 0 {
		note("%s: %d requests failed during the roll, the first: %s", rollScenarioName, len(failures), failures[0])
	}
	add(rollScenarioName, fmt.Sprintf("time for a pool of %d to roll to a new image", size), rolled.Seconds(), "s", 0, 0, "", nil)
	add(rollScenarioName, fmt.Sprintf("back to %d staged, all of the new image, once the requests stop", size), full.Seconds(), "s", 0, 0, "", nil)
	add(rollScenarioName, "requests during the roll", float64(issued), "requests", 0, 0, "", nil)
	add(rollScenarioName, "served staged during the roll", float64(staged), "requests", 0, 0, fmt.Sprintf("= %d", issued), ptr(staged == issued))
	add(rollScenarioName, "fell to on demand during the roll", float64(onDemand), "requests", 0, 0, "", nil)
	add(rollScenarioName, "failed during the roll", float64(len(failures)), "requests", 0, 0, "", nil)
	if len(lat) > 0 {
		add(rollScenarioName, "request → ready p50 during the roll", ms(sorted(lat).p(0.5)), "ms", 0, 0, "", nil)
	}
	add(rollScenarioName, "lowest staged sessions seen during the roll", float64(max(lowest, 0)), "sessions", 0, 0, "", nil)
	return nil
}

// rollState looks at the pool scID through the API and the engine: the
// number of its staged sessions (-1 when unknown), whether the roll to
// newImage is over (every staged session's container is of newImage, and
// none of the old one is staged or provisioning), and, when not, why.
// A provisioning session without a container yet counts as old when it
// was created before the change was answered (patched). images caches
// each container's Config.Image.
func rollState(ctx context.Context, e *env, dc *dockerclient.Client, scID, newImage string, patched time.Time,
	images map[string]string) (int, bool, string) {
	list := func(status string) ([]map[string]any, error) {
		code, out, err := e.call(http.MethodGet, "/api/v1/sessions?limit=1000&staging_config="+url.QueryEscape(scID)+"&status="+status, nil)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET sessions: %d %v", code, out)
		}
		items, _ := out["items"].([]any)
		ss := make([]map[string]any, 0, len(items))
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				ss = append(ss, m)
			}
		}
		return ss, nil
	}
	imageOf := func(id string) (string, error) {
		if img, ok := images[id]; ok {
			return img, nil
		}
		in, err := dc.ContainerInspect(ctx, id, dockerclient.ContainerInspectOptions{})
		if err != nil {
			return "", err
		}
		images[id] = in.Container.Config.Image
		return in.Container.Config.Image, nil
	}
	staged, err := list("staged")
	if err != nil {
		return -1, false, err.Error()
	}
	provisioning, err := list("provisioning")
	if err != nil {
		return len(staged), false, err.Error()
	}
	old := 0
	for _, s := range staged {
		id, _ := s["container_id"].(string)
		img, err := imageOf(id)
		if err != nil {
			return len(staged), false, fmt.Sprintf("inspecting container %s: %v", id, err)
		}
		if img != newImage {
			old++
		}
	}
	oldProvisioning := 0
	for _, s := range provisioning {
		if id, _ := s["container_id"].(string); id != "" {
			if img, err := imageOf(id); err == nil {
				if img != newImage {
					oldProvisioning++
				}
				continue
			}
		}
		created, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(s["created_at"]))
		if created.Before(patched) {
			oldProvisioning++
		}
	}
	why := fmt.Sprintf("%d staged, %d of them of the old image; %d provisioning, %d of them old or not known yet",
		len(staged), old, len(provisioning), oldProvisioning)
	return len(staged), len(staged) > 0 && old == 0 && oldProvisioning == 0, why
}
