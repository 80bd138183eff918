// Package digitalocean is the digitalocean VM provider of autoscaling: each
// machine is a droplet made through DigitalOcean's API with its official
// Go client (github.com/digitalocean/godo), which installs Debian's Docker
// Engine and serves it over TLS from cloud-init user data (cloudinit.go).
//
// It has not yet been run against the real DigitalOcean API: its tests run
// against dotest, a local stand-in written from the API's public reference.
package digitalocean

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/digitalocean/godo"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// Type is the provider's type in the vm-providers API.
const Type = "digitalocean"

// Tags every droplet of the provider has: ManagedTag, and its machine's
// own tag, MachineTagPrefix plus the machine's name (MachineTag).
const (
	ManagedTag       = "greenroom"
	MachineTagPrefix = "greenroom-machine-"
)

// Provider makes machines as droplets. It is safe for concurrent use.
type Provider struct {
	cfg         Config
	bootTimeout time.Duration
	client      *godo.Client
}

var _ autoscale.Provider = (*Provider)(nil)

// New returns the provider of c, which must be valid (Config.Validate).
// No request is made: a wrong token shows at the first Create or Delete.
func New(c Config) (*Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	boot, err := time.ParseDuration(c.BootTimeout)
	if err != nil {
		return nil, fmt.Errorf("digitalocean boot_timeout: %w", err)
	}
	// The token goes in a header of our own transport rather than through
	// godo.NewFromToken: that one fixes the API URL and godo's own retries
	// (go-retryablehttp), where ours (retry) look for the droplet before
	// sending a create again.
	hc := &http.Client{
		Timeout:   RequestTimeout,
		Transport: bearer{token: strings.TrimSpace(c.Token), base: http.DefaultTransport.(*http.Transport).Clone()},
	}
	client, err := godo.New(hc, godo.SetBaseURL(c.APIURL), godo.SetUserAgent("greenroom"))
	if err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	return &Provider{cfg: c, bootTimeout: boot, client: client}, nil
}

// Type returns "digitalocean".
func (p *Provider) Type() string { return Type }

// Create makes the droplet of spec, or finds the one a previous call made
// (the droplet tagged MachineTag(spec.Name)), and waits, polling with
// backoff for up to boot_timeout, until DigitalOcean reports it active with
// the IPv4 address it is to be reached at (public, or private with
// use_private_address). The engine is still installing then: the
// autoscaler waits for it to answer.
//
// When the droplet exists but has no address in time, the error wraps
// autoscale.ErrNoAddress and the Machine returned has the droplet's ID, so
// that the caller can delete it or call Create again.
func (p *Provider) Create(ctx context.Context, spec autoscale.MachineSpec) (autoscale.Machine, error) {
	name, err := DropletName(spec.Name)
	if err != nil {
		return autoscale.Machine{}, err
	}
	tag, err := MachineTag(spec.Name)
	if err != nil {
		return autoscale.Machine{}, err
	}
	userData, err := UserData(spec)
	if err != nil {
		return autoscale.Machine{}, fmt.Errorf("digitalocean: machine %s: %w", spec.Name, err)
	}
	d, err := retry(ctx, p, "listing droplets tagged "+tag, func(int) (*godo.Droplet, error) {
		return p.find(ctx, tag)
	})
	if err != nil {
		return autoscale.Machine{}, err
	}
	if d == nil {
		req := p.createRequest(name, tag, userData)
		d, err = retry(ctx, p, "creating droplet "+name, func(attempt int) (*godo.Droplet, error) {
			// The request before this one may have made the droplet
			// and failed on its way back (a 5xx from a proxy, a lost
			// connection): look for it before making another.
			if attempt > 1 {
				if d, err := p.find(ctx, tag); err != nil || d != nil {
					return d, err
				}
			}
			d, _, err := p.client.Droplets.Create(ctx, req)
			return d, err
		})
		if err != nil {
			return autoscale.Machine{}, err
		}
		if d == nil || d.ID < 1 {
			return autoscale.Machine{}, fmt.Errorf("digitalocean: creating droplet %s: the answer has no droplet", name)
		}
	}
	return p.waitActive(ctx, d)
}

// createRequest is the droplet create of a machine named name.
func (p *Provider) createRequest(name, tag, userData string) *godo.DropletCreateRequest {
	req := &godo.DropletCreateRequest{
		Name:     name,
		Region:   p.cfg.Region,
		Size:     p.cfg.Size,
		Image:    godo.DropletCreateImage{Slug: p.cfg.Image},
		VPCUUID:  p.cfg.VPCUUID,
		UserData: userData,
	}
	// An image or SSH key is a slug (fingerprint) or a number (its id).
	if id, err := strconv.Atoi(p.cfg.Image); err == nil {
		req.Image = godo.DropletCreateImage{ID: id}
	}
	for _, k := range p.cfg.SSHKeys {
		if id, err := strconv.Atoi(k); err == nil {
			req.SSHKeys = append(req.SSHKeys, godo.DropletCreateSSHKey{ID: id})
		} else {
			req.SSHKeys = append(req.SSHKeys, godo.DropletCreateSSHKey{Fingerprint: k})
		}
	}
	for _, t := range append(slices.Clone(p.cfg.Tags), ManagedTag, tag) {
		if !slices.Contains(req.Tags, t) {
			req.Tags = append(req.Tags, t)
		}
	}
	return req
}

// find returns the droplet tagged tag, nil when there is none. Were there
// more than one (a create whose answer was lost and was sent again before
// the first droplet showed in the list), the oldest is the machine; the
// others keep the tag, for an administrator to see and delete.
func (p *Provider) find(ctx context.Context, tag string) (*godo.Droplet, error) {
	ds, _, err := p.client.Droplets.ListByTag(ctx, tag, &godo.ListOptions{PerPage: 200})
	if err != nil || len(ds) == 0 {
		return nil, err
	}
	d := slices.MinFunc(ds, func(a, b godo.Droplet) int { return cmp.Compare(a.ID, b.ID) })
	return &d, nil
}

// waitActive polls droplet d until it is active with its address, for up to
// the boot timeout.
func (p *Provider) waitActive(ctx context.Context, d *godo.Droplet) (autoscale.Machine, error) {
	m := autoscale.Machine{ID: strconv.Itoa(d.ID)}
	bctx, cancel := context.WithTimeout(ctx, p.bootTimeout)
	defer cancel()
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.cfg.PollInterval,
		RandomizationFactor: 0.2,
		Multiplier:          1.5,
		MaxInterval:         6 * p.cfg.PollInterval,
	}
	b.Reset()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		switch addr := p.address(d); {
		case d.Status == "active" && addr.IsValid():
			m.Address = addr
			return m, nil
		case d.Status == "archive":
			return m, fmt.Errorf("digitalocean: droplet %d (%s) is archived: it will not boot", d.ID, d.Name)
		}
		timer.Reset(b.NextBackOff())
		select {
		case <-bctx.Done():
			return m, p.notActive(ctx, d)
		case <-timer.C:
		}
		got, err := retry(bctx, p, "reading droplet "+m.ID, func(int) (*godo.Droplet, error) {
			d, _, err := p.client.Droplets.Get(bctx, d.ID)
			return d, err
		})
		switch {
		case bctx.Err() != nil:
			return m, p.notActive(ctx, d)
		case notFound(err):
			return m, fmt.Errorf("digitalocean: droplet %d (%s) was deleted while it booted: %w", d.ID, d.Name, err)
		case err != nil:
			return m, err
		}
		d = got
	}
}

// notActive is the error of a droplet d that did not become active with an
// address before ctx ended or the boot timeout.
func (p *Provider) notActive(ctx context.Context, d *godo.Droplet) error {
	which := "public"
	if p.cfg.UsePrivateAddress {
		which = "private"
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("digitalocean: droplet %d (%s), status %q, has no %s IPv4 address yet: %w: %w",
			d.ID, d.Name, d.Status, which, autoscale.ErrNoAddress, err)
	}
	if d.Status == "active" {
		return fmt.Errorf("digitalocean: droplet %d (%s) is active but had no %s IPv4 address within the boot timeout (%s): %w",
			d.ID, d.Name, which, p.bootTimeout, autoscale.ErrNoAddress)
	}
	return fmt.Errorf("digitalocean: droplet %d (%s) never became active within the boot timeout (%s); its last status was %q: %w",
		d.ID, d.Name, p.bootTimeout, d.Status, autoscale.ErrNoAddress)
}

// address is d's IPv4 address that the machine is reached at, invalid
// when it has none yet.
func (p *Provider) address(d *godo.Droplet) netip.Addr {
	get := d.PublicIPv4
	if p.cfg.UsePrivateAddress {
		get = d.PrivateIPv4
	}
	s, err := get()
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}

// Delete deletes droplet id, and with it its disk (the provider attaches
// no volume); nil when it is already gone. It first reads the droplet and
// refuses one without ManagedTag: an id that is not a machine of
// Greenroom's, from a bug or a database restored into another account,
// must not delete someone's droplet.
func (p *Provider) Delete(ctx context.Context, id string) error {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 {
		return fmt.Errorf("digitalocean: %q is not a droplet id", id)
	}
	d, err := retry(ctx, p, "reading droplet "+id, func(int) (*godo.Droplet, error) {
		d, _, err := p.client.Droplets.Get(ctx, n)
		return d, err
	})
	switch {
	case notFound(err):
		return nil
	case err != nil:
		return err
	case !slices.Contains(d.Tags, ManagedTag):
		return fmt.Errorf("digitalocean: droplet %d (%s) is not tagged %s: not deleting a droplet Greenroom did not make", n, d.Name, ManagedTag)
	}
	_, err = retry(ctx, p, "deleting droplet "+id, func(int) (struct{}, error) {
		_, err := p.client.Droplets.Delete(ctx, n)
		return struct{}{}, err
	})
	if notFound(err) { // a retried delete whose first try deleted it
		return nil
	}
	return err
}

// machineNameChars is what a machine's name may hold for its droplet's name
// and tag.
var machineNameChars = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// dropletHostname is what DigitalOcean accepts as a droplet's name.
var dropletHostname = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$`)

// DropletName returns the name of machine name's droplet: name with each
// "_" made "-", as a droplet's name is a hostname. It need not be unique:
// the machine is found by its tag.
func DropletName(name string) (string, error) {
	if !machineNameChars.MatchString(name) {
		return "", fmt.Errorf("digitalocean: machine name %q: only letters, digits, '.', '-' and '_' are allowed", name)
	}
	n := strings.ReplaceAll(name, "_", "-")
	if !dropletHostname.MatchString(n) {
		return "", fmt.Errorf("digitalocean: machine name %q is not a host name (it must end with a letter or a digit)", name)
	}
	return n, nil
}

// MachineTag returns the tag of machine name's droplet, the one Create
// finds it by: MachineTagPrefix and name, each "." made ":" (a tag has no
// dots, nor a name colons, so two names never share a tag).
func MachineTag(name string) (string, error) {
	if !machineNameChars.MatchString(name) {
		return "", fmt.Errorf("digitalocean: machine name %q: only letters, digits, '.', '-' and '_' are allowed", name)
	}
	t := MachineTagPrefix + strings.ReplaceAll(name, ".", ":")
	if !tagPattern.MatchString(t) {
		return "", fmt.Errorf("digitalocean: machine name %q is too long for a tag", name)
	}
	return t, nil
}

// APIError is an error answer of DigitalOcean's API: its status, message
// and request id (for DigitalOcean's support). It unwraps to godo's
// *godo.ErrorResponse.
type APIError struct {
	Status    int
	Message   string
	RequestID string
	resp      *godo.ErrorResponse
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

func (e *APIError) Unwrap() error { return e.resp }

// apiStatus returns the HTTP status of err's API answer, 0 when err is not
// one.
func apiStatus(err error) int {
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// notFound reports whether err is the API's 404.
func notFound(err error) bool { return apiStatus(err) == http.StatusNotFound }

// retryable reports whether a request that failed with err is sent again:
// when the API answered 429 (its rate limit) or a 5xx, or the request
// failed on its way (a refused or reset connection, a timeout), but not
// once ctx has ended.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if s := apiStatus(err); s != 0 {
		return s == http.StatusTooManyRequests || s >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// retry runs f, op's request, up to Attempts times while it fails with a
// retryable error, waiting RetryInterval, then twice as long each time (up
// to 15 times it), in between. f is told which attempt it is. The error
// names op and, for an API answer, has DigitalOcean's message and request
// id (APIError).
func retry[T any](ctx context.Context, p *Provider, op string, f func(attempt int) (T, error)) (T, error) {
	attempt := 0
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.cfg.RetryInterval,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         15 * p.cfg.RetryInterval,
	}
	v, err := backoff.Retry(ctx, func() (T, error) {
		attempt++
		v, err := f(attempt)
		if err != nil && !retryable(ctx, err) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(Attempts), backoff.WithMaxElapsedTime(0))
	if err == nil {
		return v, nil
	}
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		err = &APIError{Status: er.Response.StatusCode, Message: er.Message, RequestID: er.RequestID, resp: er}
	}
	if attempt > 1 {
		op += fmt.Sprintf(" (%d attempts)", attempt)
	}
	return v, fmt.Errorf("digitalocean: %s: %w", op, err)
}

// bearer sends the API token in every request's Authorization header.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// Find returns the droplet made for name, if there is one (a deletion
// whose machine id was never recorded: the replica that made it died
// first).
func (p *Provider) Find(ctx context.Context, name string) (autoscale.Machine, bool, error) {
	tag, err := MachineTag(name)
	if err != nil {
		return autoscale.Machine{}, false, err
	}
	d, err := p.find(ctx, tag)
	if err != nil || d == nil {
		return autoscale.Machine{}, false, err
	}
	return autoscale.Machine{ID: strconv.Itoa(d.ID), Address: p.address(d)}, true, nil
}
