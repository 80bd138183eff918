package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/nats-io/nats.go/jetstream"

	libapp "github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/schemas"
	"github.com/greenroom-dev/greenroom/services/config/service"
)

// harness is a config service on a fresh database and JetStream server,
// served over HTTP through a contract check: every request and response
// of every test is validated against schemas/api/openapi.yaml.
type harness struct {
	t        *testing.T
	env      *apptest.Env
	deps     *libapp.Deps
	svc      *service.Service
	contract *contract
	url      string
	token    string
	events   *apptest.Recorder
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := apptest.New(t)
	deps := env.Deps(t, "config")
	h := &harness{t: t, env: env, deps: deps, token: env.Settings().AdminToken}
	h.events = apptest.NewRecorder(t, deps.NC)
	svc, err := service.New(deps, service.Config{AdminToken: h.token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	h.svc = svc
	h.contract = newContract(t)
	srv := httptest.NewServer(h.contract.check(svc.Handler()))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// in returns the harness reporting to t, for subtests.
func (h *harness) in(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// ---------------------------------------------------------------- calls

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

type callOption func(*http.Request)

func withoutToken() callOption { return func(r *http.Request) { r.Header.Del("Authorization") } }

func withHeader(k, v string) callOption { return func(r *http.Request) { r.Header.Set(k, v) } }

// call sends a request with the admin token. body is sent as is when it is
// a string, as JSON otherwise, and not at all when nil.
func (h *harness) call(method, path string, body any, opts ...callOption) response {
	h.t.Helper()
	res, err := h.send(context.Background(), method, path, body, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// send is call for any goroutine: it reports errors instead of failing.
func (h *harness) send(ctx context.Context, method, path string, body any, opts ...callOption) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.url+path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	for _, o := range opts {
		o(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: raw}, nil
}

// sendAsync sends a request in the background; the answer arrives on the
// returned channel.
func (h *harness) sendAsync(method, path string, body any, opts ...callOption) <-chan response {
	out := make(chan response, 1)
	go func() {
		res, err := h.send(context.Background(), method, path, body, opts...)
		if err != nil {
			h.t.Errorf("%v", err)
		}
		out <- res
	}()
	return out
}

// answer waits up to 30 s for a response from sendAsync.
func (h *harness) answer(ch <-chan response) response {
	h.t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(30 * time.Second):
		h.t.Fatal("no answer within 30s")
	}
	return response{}
}

// decodeAs decodes a response body.
func decodeAs[T any](t *testing.T, res response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(res.Body, &v); err != nil {
		t.Fatalf("decoding %s: %v", res.Body, err)
	}
	return v
}

// must calls and fails the test unless the answer has status want; it
// decodes the body into out when out is not nil.
func (h *harness) must(want int, method, path string, body, out any, opts ...callOption) {
	h.t.Helper()
	res := h.call(method, path, body, opts...)
	if res.Status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.Status, want, res.Body)
	}
	if out != nil {
		if err := json.Unmarshal(res.Body, out); err != nil {
			h.t.Fatalf("%s %s: decoding %s: %v", method, path, res.Body, err)
		}
	}
}

// problem calls and checks that the answer is a problem with status want
// naming field (when field is not empty); it returns the problem.
func (h *harness) problem(want int, field, method, path string, body any, opts ...callOption) problem {
	h.t.Helper()
	var p problem
	h.must(want, method, path, body, &p, opts...)
	if p.Status != want || p.Title == "" || p.Type == "" || p.Detail == "" {
		h.t.Errorf("%s %s: incomplete problem %+v", method, path, p)
	}
	if field != "" && p.Field != field {
		h.t.Errorf("%s %s: problem names field %q, want %q (detail %q)", method, path, p.Field, field, p.Detail)
	}
	if field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != field) {
		h.t.Errorf("%s %s: errors %+v do not start with field %q", method, path, p.Errors, field)
	}
	return p
}

// ---------------------------------------------------------------- events

// nextEvent returns the next event on subject in the GREENROOM stream after
// those already returned by c, waiting up to 10 s.
func nextEvent(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	msg, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("waiting for an event: %v", err)
	}
	return msg
}

// streamConsumer reads subject from the start of the GREENROOM stream.
func (h *harness) streamConsumer(subject string) jetstream.Consumer {
	h.t.Helper()
	c, err := h.deps.JS.OrderedConsumer(context.Background(), bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// relayOnce publishes what the outbox holds, as the service's relay does.
func (h *harness) relayOnce() int {
	h.t.Helper()
	res, err := h.deps.NewRelay().RunOnce(context.Background())
	if err != nil {
		h.t.Fatalf("relay: %v", err)
	}
	return res.Published
}

// decodeEvent validates raw against its schema and decodes its data.
func (h *harness) decodeEvent(raw []byte, data any) events.Event {
	h.t.Helper()
	if err := h.deps.Validator.Validate(raw); err != nil {
		h.t.Fatalf("event does not match its schema: %v", err)
	}
	ev, err := events.Decode(raw)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := ev.DecodeData(data); err != nil {
		h.t.Fatal(err)
	}
	return ev
}

// ---------------------------------------------------------------- contract

var defineFormats sync.Once

// contract validates requests and responses against openapi.yaml and
// records which operations were exercised.
type contract struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]bool
}

func newContract(t *testing.T) *contract {
	t.Helper()
	defineFormats.Do(func() {
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
	})
	doc, err := openapi3.NewLoader().LoadFromData(schemas.OpenAPI)
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{t: t, doc: doc, router: router, seen: map[string]bool{}}
}

// check wraps the service's handler. A request the spec calls invalid must
// be answered 400 (or 401: authentication comes first, so the 401 cases
// skip request validation); every response must be one the spec describes
// for the operation, with a body that matches.
func (c *contract) check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			c.t.Errorf("reading request: %v", err)
			return
		}
		route, params, err := c.router.FindRoute(r)
		if r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/console/") {
			// The admin console is a page, not an operation of the API.
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			return
		}
		if err != nil {
			c.t.Errorf("%s %s is not an operation of openapi.yaml: %v", r.Method, r.URL.Path, err)
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			return
		}

		if route.Operation.OperationID == "streamEvents" {
			// A stream that lasts until the client goes: served as it
			// is, its framing checked by the test that reads it.
			c.mu.Lock()
			c.seen[route.Operation.OperationID] = true
			c.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			return
		}

		// The server gets the exact bytes sent; the validator a copy (it
		// could otherwise fill in defaults).
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)

		vr := r.Clone(ctx)
		vr.Body = io.NopCloser(bytes.NewReader(body))
		in := &openapi3filter.RequestValidationInput{
			Request: vr, PathParams: params, Route: route,
			Options: &openapi3filter.Options{
				AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
				SkipSettingDefaults: true,
				MultiError:          true,
			},
		}
		where := r.Method + " " + r.URL.RequestURI()
		if rec.Code != http.StatusUnauthorized {
			// A request the spec rejects must be refused: 400, or 413 for
			// a body over the limit.
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil &&
				rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
				c.t.Errorf("%s: the spec rejects the request (%v) but the server answered %d: %s", where, err, rec.Code, rec.Body)
			}
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 rec.Code,
			Header:                 rec.Header(),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		out.SetBodyBytes(rec.Body.Bytes())
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			c.t.Errorf("%s: response %d does not match the spec: %v\nbody: %s", where, rec.Code, err, rec.Body)
		}
		c.mu.Lock()
		c.seen[route.Operation.OperationID] = true
		c.mu.Unlock()

		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// missing lists the operations of the spec not exercised yet.
func (c *contract) missing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, item := range c.doc.Paths.Map() {
		for _, op := range item.Operations() {
			if !c.seen[op.OperationID] {
				out = append(out, op.OperationID)
			}
		}
	}
	slices.Sort(out)
	return out
}
