// Package nettest has network peers for tests that misbehave on purpose.
package nettest

import (
	"net"
	"sync"
	"sync/atomic"
)

// BlackHole is a TCP endpoint on loopback that accepts connections and
// never reads from nor answers them: a Docker engine (or any server) that
// hangs every call. Release makes it hang up on every connection, held or
// new; Close also stops listening.
type BlackHole struct {
	ln       net.Listener
	accepted atomic.Int64
	first    chan struct{} // closed on the first accept

	mu       sync.Mutex
	held     []net.Conn
	released bool
}

// ListenBlackHole starts a black hole on a free loopback port.
func ListenBlackHole() (*BlackHole, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &BlackHole{ln: ln, first: make(chan struct{})}
	go b.serve()
	return b, nil
}

func (b *BlackHole) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		if b.accepted.Add(1) == 1 {
			close(b.first)
		}
		b.mu.Lock()
		if b.released {
			_ = c.Close()
		} else {
			b.held = append(b.held, c)
		}
		b.mu.Unlock()
	}
}

// Addr is where it listens.
func (b *BlackHole) Addr() net.Addr { return b.ln.Addr() }

// Endpoint is its address as a Docker endpoint: tcp://127.0.0.1:PORT.
func (b *BlackHole) Endpoint() string { return "tcp://" + b.ln.Addr().String() }

// Accepted counts the connections it has accepted.
func (b *BlackHole) Accepted() int64 { return b.accepted.Load() }

// First is closed once it has accepted a connection.
func (b *BlackHole) First() <-chan struct{} { return b.first }

// Release closes the connections it holds and, from then on, each new one
// at once.
func (b *BlackHole) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.released = true
	for _, c := range b.held {
		_ = c.Close()
	}
	b.held = nil
}

// Close stops listening and releases every connection.
func (b *BlackHole) Close() error {
	err := b.ln.Close()
	b.Release()
	return err
}

// RefusedEndpoint is a Docker endpoint on a loopback port nothing listens
// on (one that was free a moment ago): an engine that is down.
func RefusedEndpoint() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "tcp://" + addr, nil
}
