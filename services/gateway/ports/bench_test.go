package ports_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// The gateway's added cost, measured side by side in one run:
//
//	go test -run '^$' -bench . -benchtime 2000x ./ports/
//
// Direct goes to the upstream server; Proxied goes through the gateway's
// handler (sign-in check served from its grant cache, the proxy, the
// keepalive decision) to the same server.

func benchGet(b *testing.B, c *http.Client, u string) {
	b.Helper()
	for b.Loop() {
		res, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

func BenchmarkHTTPDirect(b *testing.B) {
	g := start(b, false)
	benchGet(b, http.DefaultClient, g.upstream+"/")
}

func BenchmarkHTTPProxied(b *testing.B) {
	g := start(b, false)
	c := browser(b)
	signIn(b, c, g.url, "alice", "alice-password")
	benchGet(b, c, g.url+"/session/"+g.alice+"/")
}

func benchWebSocket(b *testing.B, c *http.Client, u, origin string) {
	b.Helper()
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Origin": {origin}}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	frame := []byte(strings.Repeat("x", 64<<10))
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := conn.Write(ctx, websocket.MessageBinary, frame); err != nil {
			b.Fatal(err)
		}
		if _, _, err := conn.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWebSocketDirect(b *testing.B) {
	g := start(b, false)
	benchWebSocket(b, http.DefaultClient, "ws"+strings.TrimPrefix(g.upstream, "http")+"/websockify", g.upstream)
}

func BenchmarkWebSocketProxied(b *testing.B) {
	g := start(b, false)
	c := browser(b)
	signIn(b, c, g.url, "alice", "alice-password")
	benchWebSocket(b, c, "ws"+strings.TrimPrefix(g.url, "http")+"/session/"+g.alice+"/websockify", g.url)
}
