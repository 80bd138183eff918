package digitalocean

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Defaults of Config.
const (
	APIURLDefault      = "https://api.digitalocean.com/"
	ImageDefault       = "debian-12-x64"
	BootTimeoutDefault = 10 * time.Minute
	// PollIntervalDefault is the first wait between two reads of a booting
	// droplet; the waits grow to 6 times it (30s). A droplet takes about a
	// minute to become active, and DigitalOcean allows 250 requests a
	// minute per token.
	PollIntervalDefault = 5 * time.Second
	// RetryIntervalDefault is the first wait before a request answered 429
	// or 5xx is sent again; the waits double, up to 15 times it (15s).
	RetryIntervalDefault = time.Second
	// Attempts is how many times a request is sent when it is answered 429
	// or 5xx, or fails on the way (the first time and 3 retries).
	Attempts = 4
	// RequestTimeout bounds one request to the API.
	RequestTimeout = 30 * time.Second
)

// Config is a digitalocean VM provider's settings, as the vm-providers API
// keeps them (JSON), plus the provider's timing, which is not a setting.
type Config struct {
	// APIURL is DigitalOcean's API (default APIURLDefault); tests point it
	// at a stand-in.
	APIURL string `json:"api_url,omitempty"`
	// Region, Size and Image are the droplets' region slug (nyc3), size
	// slug (s-2vcpu-4gb) and image slug or id (default debian-12-x64: the
	// user data installs Debian's docker.io).
	Region string `json:"region"`
	Size   string `json:"size"`
	Image  string `json:"image,omitempty"`
	// SSHKeys are the fingerprints or ids of the account's SSH keys put on
	// every droplet, for an administrator; none is needed.
	SSHKeys []string `json:"ssh_keys,omitempty"`
	// VPCUUID is the VPC the droplets join (default: the region's default
	// VPC).
	VPCUUID string `json:"vpc_uuid,omitempty"`
	// Tags go on every droplet, with "greenroom" and the machine's own tag.
	Tags []string `json:"tags,omitempty"`
	// Cores, MemoryMB and GPUs are what a droplet of Size has: the
	// autoscaler plans capacity with them, as DigitalOcean is not asked.
	Cores    float64 `json:"cores"`
	MemoryMB int     `json:"memory_mb"`
	GPUs     int     `json:"gpus,omitempty"`
	// UsePrivateAddress makes the machine's address its private (VPC)
	// IPv4 address instead of its public one: for provisioners that run
	// in the same VPC.
	UsePrivateAddress bool `json:"use_private_address,omitempty"`
	// BootTimeout is how long Create waits for a droplet to become active
	// with an address, a Go duration (default "10m").
	BootTimeout string `json:"boot_timeout,omitempty"`
	// Token is the API token (read and write on droplets). It is a secret:
	// the vm-providers API never returns it.
	Token string `json:"token"`

	// PollInterval and RetryInterval override PollIntervalDefault and
	// RetryIntervalDefault (their maximums follow); tests make them short.
	PollInterval  time.Duration `json:"-"`
	RetryInterval time.Duration `json:"-"`
}

// String writes the config without its token, so that logging it does not
// leak the secret.
func (c Config) String() string {
	if c.Token != "" {
		c.Token = "REDACTED"
	}
	type plain Config
	return fmt.Sprintf("%+v", plain(c))
}

// tagPattern is what DigitalOcean accepts as a tag.
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_:-]{1,255}$`)

// Validate returns an error naming each setting that is missing or
// malformed; nil when the config can be used.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("digitalocean %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.APIURL != "" {
		// The token goes in every request: plain HTTP only to this
		// machine (a stand-in, a local proxy).
		u, err := url.Parse(c.APIURL)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			bad("api_url", "%q is not an https URL", c.APIURL)
		case u.Scheme == "http" && !loopback(u.Hostname()):
			bad("api_url", "%q must be https (plain http is allowed to a loopback address only)", c.APIURL)
		}
	}
	if strings.TrimSpace(c.Region) == "" {
		bad("region", "is required (a region slug such as nyc3)")
	}
	if strings.TrimSpace(c.Size) == "" {
		bad("size", "is required (a size slug such as s-2vcpu-4gb)")
	}
	for i, k := range c.SSHKeys {
		if strings.TrimSpace(k) == "" {
			bad("ssh_keys", "entry %d is empty", i)
		}
	}
	if c.VPCUUID != "" {
		if _, err := uuid.Parse(c.VPCUUID); err != nil {
			bad("vpc_uuid", "%q is not a UUID", c.VPCUUID)
		}
	}
	for _, t := range c.Tags {
		if !tagPattern.MatchString(t) {
			bad("tags", "%q may have only letters, digits, colons, dashes and underscores", t)
		}
	}
	if c.Cores <= 0 {
		bad("cores", "is required: the vCPUs of size %s, greater than 0", c.Size)
	}
	if c.MemoryMB <= 0 {
		bad("memory_mb", "is required: the memory of size %s in MB, greater than 0", c.Size)
	}
	if c.GPUs < 0 {
		bad("gpus", "must not be negative")
	}
	if c.BootTimeout != "" {
		if d, err := time.ParseDuration(c.BootTimeout); err != nil || d <= 0 {
			bad("boot_timeout", "%q is not a duration greater than 0 such as 10m", c.BootTimeout)
		}
	}
	if strings.TrimSpace(c.Token) == "" {
		bad("token", "is required")
	}
	return errors.Join(errs...)
}

// loopback reports whether host is localhost or a loopback address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// withDefaults returns c with its defaults; c is valid.
func (c Config) withDefaults() Config {
	if c.APIURL == "" {
		c.APIURL = APIURLDefault
	}
	// godo resolves "v2/droplets" against the URL: without a trailing
	// slash, the URL's last path element would be replaced.
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	if c.Image == "" {
		c.Image = ImageDefault
	}
	if c.BootTimeout == "" {
		c.BootTimeout = BootTimeoutDefault.String()
	}
	if c.PollInterval <= 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = RetryIntervalDefault
	}
	return c
}
