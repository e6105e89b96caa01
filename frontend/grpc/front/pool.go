package main

// The frontend processes this front serves: one link each (backend.go), kept
// connected, and a pick per request.
//
// Why per request and not per connection: with --workers N, the kernel's
// SO_REUSEPORT spreads *connections* over processes, so one gRPC channel (one
// HTTP/2 connection, what most clients open) would be served by one worker, and
// a few channels often land unevenly (7:1, 6:2 of 8 were seen). One front per
// pod that hands each call, and each request of a stream, to the worker with the
// fewest unanswered requests uses every worker for every client.

import (
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	reconnectFirst = 50 * time.Millisecond
	reconnectMax   = 250 * time.Millisecond // a refused local dial costs microseconds
)

type pool struct {
	addresses []string
	ids       atomic.Uint64
	mu        sync.RWMutex
	links     []*backend // by address; nil while not connected
	next      atomic.Uint64
	closing   chan struct{}
}

func newPool(addresses []string) *pool {
	return &pool{
		addresses: addresses,
		links:     make([]*backend, len(addresses)),
		closing:   make(chan struct{}),
	}
}

// connect links every address it can now and dials the others again and again
// (workers may still be starting), as it does for a link that ends later (its
// worker restarted). Until a first link is up, calls are answered UNAVAILABLE.
func (p *pool) connect() {
	for i, address := range p.addresses {
		conn, err := net.Dial("unix", address)
		if err != nil {
			go p.redial(i)
			continue
		}
		p.attach(i, conn)
	}
}

func (p *pool) attach(i int, conn net.Conn) {
	b := newBackend(conn, &p.ids)
	p.mu.Lock()
	p.links[i] = b
	p.mu.Unlock()
	go func() {
		err := b.run()
		p.mu.Lock()
		if p.links[i] == b {
			p.links[i] = nil
		}
		p.mu.Unlock()
		select {
		case <-p.closing:
			return
		default:
		}
		log.Printf("link to %s ended (%v); calls it carried failed UNAVAILABLE; reconnecting",
			p.addresses[i], err)
		go p.redial(i)
	}()
}

func (p *pool) redial(i int) {
	wait := reconnectFirst
	for {
		select {
		case <-p.closing:
			return
		case <-time.After(wait):
		}
		conn, err := net.Dial("unix", p.addresses[i])
		if err == nil {
			log.Printf("link to %s is back", p.addresses[i])
			p.attach(i, conn)
			return
		}
		wait = min(2*wait, reconnectMax)
	}
}

// pick: the connected link with the fewest unanswered requests (ties go round
// robin, so an idle pod spreads its first calls); nil if none is connected.
func (p *pool) pick() *backend {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := len(p.links)
	start := int(p.next.Add(1) % uint64(n))
	var best *backend
	for k := range n {
		b := p.links[(start+k)%n]
		if b != nil && (best == nil || b.outstanding.Load() < best.outstanding.Load()) {
			best = b
		}
	}
	return best
}

// close: links that end from now on are not dialled again.
func (p *pool) close() {
	select {
	case <-p.closing:
	default:
		close(p.closing)
	}
}
