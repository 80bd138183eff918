package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const settingsScenarioName = "settings on demand"

// settingsCost measures what applying a user's persistent profile and a
// per-user volume mapping (issue 10) adds to an on-demand session: the
// same request to two workspaces that differ only in those settings, with
// no initialisation delay so the settings are not hidden by it, samples
// interleaved so both see the same machine. The profile makes the request
// on demand by rule 4; the other workspace has no staging config.
func settingsCost(e *env, samples int, request requestFunc) error {
	dir, err := os.MkdirTemp("", "greenroom-bench-profiles-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	noDelay := map[string]any{"environment": map[string]any{"GREENROOM_DEMO_INIT_DELAY": "0s"}}
	plain := e.workspace("plain")
	plain["run_config"] = noDelay
	withSettings := e.workspace("profiled")
	withSettings["run_config"] = noDelay
	withSettings["persistent_profile_path"] = filepath.Join(dir, "profiles/{username}")
	withSettings["volume_mappings"] = map[string]any{
		filepath.Join(dir, "data/{username}"): map[string]any{"bind": "/data", "mode": "rw", "uid": 1000, "gid": 1000},
	}
	for _, ws := range []map[string]any{plain, withSettings} {
		if _, err := e.create("/api/v1/workspaces", ws); err != nil {
			return err
		}
	}
	var without, with []time.Duration
	for i := 0; i < samples && !interrupted(); i++ {
		for _, ws := range []string{"plain", "profiled"} {
			time.Sleep(500 * time.Millisecond) // the previous container's start settles
			d, s, err := request(ws)
			if err != nil {
				return fmt.Errorf("on-demand request to %s: %w", ws, err)
			}
			if s.Origin != "on_demand" {
				return fmt.Errorf("expected an on-demand session of %s, got %s", ws, s.Origin)
			}
			if ws == "plain" {
				without = append(without, d)
			} else {
				with = append(with, d)
			}
		}
	}
	if len(with) == 0 || len(without) == 0 {
		return nil
	}
	a, b := sorted(without), sorted(with)
	n := fmt.Sprintf(" (n=%d)", len(a.lat))
	add(settingsScenarioName, "on demand, no profile or mappings: request → ready p50"+n, ms(a.p(0.5)), "ms", 0, 0, "", nil)
	add(settingsScenarioName, "on demand with persistent profile + volume mapping: request → ready p50"+n, ms(b.p(0.5)), "ms",
		ms(a.p(0.5)), ms(b.p(0.5))/ms(a.p(0.5)), "", nil)
	add(settingsScenarioName, "on demand with persistent profile + volume mapping: request → ready max"+n, ms(b.p(1)), "ms", 0, 0, "", nil)
	return nil
}
