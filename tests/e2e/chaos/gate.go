package chaos

import (
	"io"
	"net"
	"sync"
)

// gate is a TCP proxy on loopback to target that can hold every byte in
// both directions (pause) and let them go again (resume): one replica's
// link to nats-server, cut at a moment of the fault's choosing without
// closing it, so the replica neither publishes nor acknowledges.
type gate struct {
	l      net.Listener
	target string

	mu     sync.Mutex // guards paused
	paused bool
	cond   *sync.Cond
	conns  connSet
}

func listenGate(target string) (*gate, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &gate{l: l, target: target}
	g.cond = sync.NewCond(&g.mu)
	go g.serve()
	return g, nil
}

func (g *gate) addr() string { return g.l.Addr().String() }

func (g *gate) serve() {
	for {
		c, err := g.l.Accept()
		if err != nil {
			return
		}
		go g.relay(c)
	}
}

func (g *gate) relay(c net.Conn) {
	up, err := net.Dial("tcp", g.target)
	if err != nil {
		_ = c.Close()
		return
	}
	g.conns.add(c, up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				g.wait()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
}

// wait blocks while the gate is paused.
func (g *gate) wait() {
	g.mu.Lock()
	for g.paused {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

func (g *gate) pause() {
	g.mu.Lock()
	g.paused = true
	g.mu.Unlock()
}

func (g *gate) resume() {
	g.mu.Lock()
	g.paused = false
	g.cond.Broadcast()
	g.mu.Unlock()
}

// drop closes the connections open now, with what they hold: the bytes
// of a replica killed while the gate was paused never reach the server.
// New connections (the replica restarted) go through as usual.
func (g *gate) drop() { g.conns.closeAll() }

// Close stops the gate and closes its connections.
func (g *gate) Close() error {
	g.resume()
	err := g.l.Close()
	g.conns.closeAll()
	return err
}

var _ io.Closer = (*gate)(nil)

// connSet is the connections the gate holds open, to close together.
type connSet struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (s *connSet) add(cs ...net.Conn) {
	s.mu.Lock()
	s.conns = append(s.conns, cs...)
	s.mu.Unlock()
}

// closeAll closes the connections and forgets them.
func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
