// Package dotest is a local stand-in for the part of DigitalOcean's API
// that the digitalocean provider calls, for its tests: it is NOT
// DigitalOcean. It was written from DigitalOcean's public API reference
// (https://docs.digitalocean.com/reference/api/api-reference/#tag/Droplets)
// and from the JSON shapes of github.com/digitalocean/godo, the official Go
// client, whose structs it marshals; it has never been compared with the
// real API's answers, so a test that passes against it shows that the
// provider speaks the documented API, not that DigitalOcean answers so.
//
// It serves, over an httptest.Server:
//
//	POST   /v2/droplets               create (202, status "new")
//	GET    /v2/droplets/{id}          one droplet (404 when there is none)
//	GET    /v2/droplets?tag_name=TAG  the droplets with TAG (page, per_page)
//	DELETE /v2/droplets/{id}          204, or 404 when there is none
//
// Every request needs "Authorization: Bearer <token>" (401 otherwise).
// Errors have DigitalOcean's shape, {"id": "...", "message": "...",
// "request_id": "..."}, and every response an X-Request-Id header. Droplets
// live in memory: a droplet is "new", without addresses, for the first
// Options.ActiveAfterGets GETs of it and "active", with a public and a
// private IPv4 address, from then on. Fail makes the next requests fail
// (a 429 or a 5xx; Inject: a given request, and possibly after it took
// effect) and Requests returns every request received, bodies
// included, so that a test can read the user data a provider sent.
package dotest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/godo"
)

// Options configure a Server; zero values take the defaults.
type Options struct {
	// Token is the API token the server accepts (default "test-token").
	Token string
	// ActiveAfterGets is how many GETs of a droplet answer status "new"
	// before it is "active"; 0 makes it active at its first GET.
	ActiveAfterGets int
	// PublicPrefix and PrivatePrefix are where droplets' public and
	// private IPv4 addresses come from, the droplet with id N getting the
	// prefix's Nth address (defaults 203.0.113.0/24, TEST-NET-3, and
	// 10.110.0.0/20, a VPC's range).
	PublicPrefix, PrivatePrefix netip.Prefix
	// NoPublicAddress makes active droplets have only a private address,
	// as a droplet created with public networking off has.
	NoPublicAddress bool
	// Regions and Sizes, when not empty, are the only region and size
	// slugs a create may name; another one is refused with a 422 as
	// DigitalOcean refuses an unavailable region or size.
	Regions, Sizes []string
}

// Request is one request the server received.
type Request struct {
	Method string
	// Path is the URL's path, Query its parsed query.
	Path  string
	Query url.Values
	// Authorization and UserAgent are the request's headers.
	Authorization string
	UserAgent     string
	Body          []byte
	// Status is what the server answered.
	Status int
}

// CreateRequest is the body of POST /v2/droplets, as the API reference
// documents it. Image and each of SSHKeys are a slug (fingerprint) or a
// number, so they are kept as raw JSON.
type CreateRequest struct {
	Name              string            `json:"name"`
	Region            string            `json:"region"`
	Size              string            `json:"size"`
	Image             json.RawMessage   `json:"image"`
	SSHKeys           []json.RawMessage `json:"ssh_keys"`
	Backups           bool              `json:"backups"`
	IPv6              bool              `json:"ipv6"`
	Monitoring        bool              `json:"monitoring"`
	PrivateNetworking bool              `json:"private_networking"`
	UserData          string            `json:"user_data"`
	Tags              []string          `json:"tags"`
	VPCUUID           string            `json:"vpc_uuid"`
}

// Create returns the body of r, a POST /v2/droplets.
func (r Request) Create() (CreateRequest, error) {
	var c CreateRequest
	if r.Method != http.MethodPost || r.Path != "/v2/droplets" {
		return c, fmt.Errorf("%s %s is not a droplet create", r.Method, r.Path)
	}
	err := json.Unmarshal(r.Body, &c)
	return c, err
}

// Server is the stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:PORT), the
	// provider's api_url.
	URL string

	srv  *httptest.Server
	opts Options

	mu       sync.Mutex
	droplets map[int]*droplet
	nextID   int
	requests []Request
	faults   []Fault // the next failures, in order
	reqSeq   int
}

type droplet struct {
	d    godo.Droplet
	gets int
}

// New starts a Server; Close stops it.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "test-token"
	}
	if !opts.PublicPrefix.IsValid() {
		opts.PublicPrefix = netip.MustParsePrefix("203.0.113.0/24")
	}
	if !opts.PrivatePrefix.IsValid() {
		opts.PrivatePrefix = netip.MustParsePrefix("10.110.0.0/20")
	}
	s := &Server{opts: opts, droplets: map[int]*droplet{}, nextID: 1}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Token is the token the server accepts.
func (s *Server) Token() string { return s.opts.Token }

// Fault is a failure of a request to come.
type Fault struct {
	// Method and Path are the request's; empty matches any.
	Method, Path string
	// Status is the answer: 429 (DigitalOcean's rate limit) or a 5xx (a
	// server error, a proxy's).
	Status int
	// Done makes the request take effect before it is answered Status: a
	// create that made its droplet, a delete that deleted it, and whose
	// answer says otherwise, as when the answer is lost on its way back.
	Done bool
}

// Fail makes the next k requests, whatever they are, fail with status
// (429 or a 5xx) without taking effect.
func (s *Server) Fail(status, k int) {
	for range k {
		s.Inject(Fault{Status: status})
	}
}

// Inject adds f to the failures to come: the first request that matches
// it, after those that matched the failures added before, fails.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// fault returns the failure of a request with method and path, and
// removes it; false when there is none. s.mu is held.
func (s *Server) fault(method, path string) (Fault, bool) {
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == method) && (f.Path == "" || f.Path == path) {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return Fault{}, false
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count returns how many requests with method and path were received.
func (s *Server) Count(method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// Droplets returns the droplets that exist, by id.
func (s *Server) Droplets() []godo.Droplet {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]godo.Droplet, 0, len(s.droplets))
	for _, d := range s.droplets {
		out = append(out, d.d)
	}
	slices.SortFunc(out, func(a, b godo.Droplet) int { return a.ID - b.ID })
	return out
}

// Errors of DigitalOcean's API, id and message as it writes them.
var (
	errUnauthorized = apiError{http.StatusUnauthorized, "unauthorized", "Unable to authenticate you"}
	errNotFound     = apiError{http.StatusNotFound, "not_found", "The resource you were accessing could not be found."}
	errRateLimit    = apiError{http.StatusTooManyRequests, "too_many_requests", "API Rate limit exceeded."}
	errServer       = apiError{http.StatusInternalServerError, "server_error", "Server was unable to give you a response."}
)

type apiError struct {
	status  int
	id      string
	message string
}

func unprocessable(format string, args ...any) apiError {
	return apiError{http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf(format, args...)}
}

// hostname is what the API accepts as a droplet's name.
var hostname = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$`)

// tagName is what the API accepts as a tag.
var tagName = regexp.MustCompile(`^[a-zA-Z0-9_:-]{1,255}$`)

// maxUserData is the API's limit on user_data.
const maxUserData = 64 << 10

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqSeq++
	requestID := fmt.Sprintf("dotest-%06d", s.reqSeq)
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		Authorization: r.Header.Get("Authorization"), UserAgent: r.Header.Get("User-Agent"),
		Body: body,
	})
	rec := &s.requests[len(s.requests)-1]

	w.Header().Set("X-Request-Id", requestID)
	w.Header().Set("Ratelimit-Limit", "5000")
	w.Header().Set("Ratelimit-Remaining", "4999")
	w.Header().Set("Ratelimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
	status, v := s.answer(r, body)
	rec.Status = status
	if e, ok := v.(apiError); ok {
		v = map[string]string{"id": e.id, "message": e.message, "request_id": requestID}
	}
	if v == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// answer answers r: a status and what to write as JSON (an apiError for
// an error, nil for no body). s.mu is held.
func (s *Server) answer(r *http.Request, body []byte) (int, any) {
	f, failed := s.fault(r.Method, r.URL.Path)
	if !failed {
		return s.route(r, body)
	}
	if f.Done {
		s.route(r, body)
	}
	if f.Status == http.StatusTooManyRequests {
		return f.Status, errRateLimit
	}
	return f.Status, apiError{f.Status, errServer.id, errServer.message}
}

// route answers r when it does not fail. s.mu is held.
func (s *Server) route(r *http.Request, body []byte) (int, any) {
	if r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		return errUnauthorized.status, errUnauthorized
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/v2/droplets" && r.Method == http.MethodPost:
		return s.create(body)
	case path == "/v2/droplets" && r.Method == http.MethodGet:
		return s.list(r)
	case strings.HasPrefix(path, "/v2/droplets/"):
		id, err := strconv.Atoi(strings.TrimPrefix(path, "/v2/droplets/"))
		d := s.droplets[id]
		if err != nil || d == nil {
			return errNotFound.status, errNotFound
		}
		switch r.Method {
		case http.MethodGet:
			d.gets++
			if d.gets > s.opts.ActiveAfterGets && d.d.Status == "new" {
				s.activate(d)
			}
			return http.StatusOK, map[string]any{"droplet": d.d}
		case http.MethodDelete:
			delete(s.droplets, id)
			return http.StatusNoContent, nil
		}
	}
	return errNotFound.status, errNotFound
}

func (s *Server) create(body []byte) (int, any) {
	var c CreateRequest
	if err := json.Unmarshal(body, &c); err != nil {
		return http.StatusBadRequest, apiError{http.StatusBadRequest, "bad_request", "unable to parse request body: " + err.Error()}
	}
	var image string
	if len(c.Image) > 0 && string(c.Image) != "null" {
		if err := json.Unmarshal(c.Image, &image); err != nil {
			image = string(c.Image) // an image id
		}
	}
	switch {
	case c.Name == "":
		return http.StatusUnprocessableEntity, unprocessable("name is required")
	case !hostname.MatchString(c.Name):
		return http.StatusUnprocessableEntity, unprocessable("name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
	case c.Region == "":
		return http.StatusUnprocessableEntity, unprocessable("region is required")
	case len(s.opts.Regions) > 0 && !slices.Contains(s.opts.Regions, c.Region):
		return http.StatusUnprocessableEntity, unprocessable("region %s is not available", c.Region)
	case c.Size == "":
		return http.StatusUnprocessableEntity, unprocessable("size is required")
	case len(s.opts.Sizes) > 0 && !slices.Contains(s.opts.Sizes, c.Size):
		return http.StatusUnprocessableEntity, unprocessable("size %s is not available", c.Size)
	case image == "":
		return http.StatusUnprocessableEntity, unprocessable("image is required")
	case len(c.UserData) > maxUserData:
		return http.StatusUnprocessableEntity, unprocessable("user_data must be at most %d bytes", maxUserData)
	}
	for _, t := range c.Tags {
		if !tagName.MatchString(t) {
			return http.StatusUnprocessableEntity, unprocessable("tags %q: only letters, numbers, colons, dashes and underscores are allowed", t)
		}
	}
	id := s.nextID
	s.nextID++
	d := &droplet{d: godo.Droplet{
		ID:        id,
		Name:      c.Name,
		Status:    "new",
		Region:    &godo.Region{Slug: c.Region},
		SizeSlug:  c.Size,
		Size:      &godo.Size{Slug: c.Size},
		Image:     &godo.Image{Slug: image},
		Tags:      slices.Clone(c.Tags),
		VolumeIDs: []string{},
		VPCUUID:   c.VPCUUID,
		Networks:  &godo.Networks{V4: []godo.NetworkV4{}, V6: []godo.NetworkV6{}},
		Created:   time.Now().UTC().Format(time.RFC3339),
	}}
	s.droplets[id] = d
	return http.StatusAccepted, map[string]any{
		"droplet": d.d,
		"links": godo.Links{Actions: []godo.LinkAction{{
			ID: 1000 + id, Rel: "create", HREF: fmt.Sprintf("%s/v2/actions/%d", s.URL, 1000+id),
		}}},
	}
}

// activate makes d active with its addresses.
func (s *Server) activate(d *droplet) {
	d.d.Status = "active"
	var v4 []godo.NetworkV4
	if !s.opts.NoPublicAddress {
		v4 = append(v4, network(s.opts.PublicPrefix, d.d.ID, "public"))
	}
	v4 = append(v4, network(s.opts.PrivatePrefix, d.d.ID, "private"))
	d.d.Networks = &godo.Networks{V4: v4, V6: []godo.NetworkV6{}}
}

// network is the id-th address of prefix, as a droplet's network.
func network(prefix netip.Prefix, id int, typ string) godo.NetworkV4 {
	a := prefix.Masked().Addr()
	for range id {
		a = a.Next()
	}
	m := uint32(0xffffffff) << (32 - prefix.Bits())
	return godo.NetworkV4{
		IPAddress: a.String(),
		Netmask:   fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff),
		Gateway:   prefix.Masked().Addr().Next().String(),
		Type:      typ,
	}
}

// list answers GET /v2/droplets, filtered by tag_name when given, one page
// (per_page, default 20, at most 200) at a time.
func (s *Server) list(r *http.Request) (int, any) {
	q := r.URL.Query()
	tag := q.Get("tag_name")
	var all []godo.Droplet
	for _, d := range s.droplets {
		if tag == "" || slices.Contains(d.d.Tags, tag) {
			all = append(all, d.d)
		}
	}
	slices.SortFunc(all, func(a, b godo.Droplet) int { return a.ID - b.ID })
	perPage, page := 20, 1
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, 200)
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	start := min((page-1)*perPage, len(all))
	end := min(start+perPage, len(all))
	links := map[string]any{}
	if end < len(all) {
		next := *r.URL
		nq := next.Query()
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		links["pages"] = godo.Pages{Next: s.URL + next.RequestURI()}
	}
	return http.StatusOK, map[string]any{
		"droplets": append([]godo.Droplet{}, all[start:end]...),
		"links":    links,
		"meta":     godo.Meta{Total: len(all)},
	}
}
