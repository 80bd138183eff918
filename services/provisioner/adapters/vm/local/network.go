package local

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// mtuOption is the bridge driver's MTU option.
const mtuOption = "com.docker.network.driver.mtu"

// ensureNetwork makes the machines' bridge network when it is missing,
// labelled greenroom.vm_network=true, with the MTU of the engine's default
// bridge (the engine's --mtu, which networks made through the API do not
// get).
func (p *Provider) ensureNetwork(ctx context.Context) error {
	p.netMu.Lock()
	defer p.netMu.Unlock()
	name := p.cfg.Network
	res, err := p.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err == nil {
		if d := res.Network.Driver; d != "bridge" {
			return fmt.Errorf("network %s: its driver is %s, not bridge", name, d)
		}
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("looking up network %s: %w", name, err)
	}
	opts := map[string]string{}
	if def, err := p.c.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{}); err == nil {
		if mtu := def.Network.Options[mtuOption]; mtu != "" {
			opts[mtuOption] = mtu
		}
	}
	if _, err := p.c.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver:  "bridge",
		Options: opts,
		Labels:  map[string]string{LabelVMNetwork: "true"},
	}); err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("creating network %s: %w", name, err)
	}
	return p.dedupeNetwork(ctx)
}

// dedupeNetwork keeps one network of the name: an engine of API 1.41 makes
// a second one of the same name when two processes ask at once, and then
// refuses the name as ambiguous. The oldest stays; the others, made by a
// provider (labelled) and without containers, go.
func (p *Provider) dedupeNetwork(ctx context.Context) error {
	name := p.cfg.Network
	list, err := p.c.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", name)})
	if err != nil {
		return fmt.Errorf("listing networks named %s: %w", name, err)
	}
	var same []network.Summary
	for _, n := range list.Items {
		if n.Name == name { // the filter matches parts of names
			same = append(same, n)
		}
	}
	if len(same) < 2 {
		return nil
	}
	slices.SortFunc(same, func(a, b network.Summary) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	for _, n := range same[1:] {
		if n.Labels[LabelVMNetwork] != "true" {
			continue
		}
		if _, err := p.c.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing the second network named %s (%s): %w", name, n.ID, err)
		}
	}
	return nil
}
