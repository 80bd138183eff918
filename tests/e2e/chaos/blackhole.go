package chaos

import (
	"net"
	"sync"
)

// listenBlackhole listens on loopback and accepts connections that it never
// reads from nor answers: a Docker endpoint that hangs every call. Its
// connections are closed with the listener.
func listenBlackhole() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &blackhole{Listener: l}
	go b.serve()
	return b, nil
}

type blackhole struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (b *blackhole) serve() {
	for {
		c, err := b.Listener.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
	}
}

func (b *blackhole) Close() error {
	err := b.Listener.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	return err
}
