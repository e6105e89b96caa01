package main

// A link to one Python frontend process (a worker, or the frontend that runs this
// front): one Unix stream socket, frames both ways, many calls in flight on it at
// once. pool.go keeps one link per frontend process and picks among them.
//
// Why frames and not gRPC again: the point of the front is that a call costs the
// Python process one frame read and one frame written, not grpcio's per-call
// machinery. So every frame that is ready goes out in one write (the writer
// drains its queue before it flushes), and the Python side answers the same way:
// under load one system call carries many calls each way.
//
// The frames (little-endian; docs/architecture.md, "Native gRPC front", is the
// reference, and clipper/frontend/grpc/bridge.py the other end):
//
//	front -> frontend: u32 size, u8 kind, u64 id, then by kind
//	  1 call, 2 stream request: u8 len + method, f64 seconds left (< 0: no
//	    deadline), u16 len + x-request-id, u16 len + x-clipper-context, message
//	  3 cancel (the caller went away), 4 stream opened, 5 stream closed: nothing
//	  6 refused (refusals.go; the id field is a count): u8 api (0 call, 1
//	    stream), u8 status code
//	frontend -> front: u32 size, u8 kind 1 (answer), u64 id, u8 status code,
//	  u32 retry-after seconds (0: none), u32 len + status message, message
//	  (when the code is OK)
//
// Ids are the front's, unique over all links. Drain and stop are signals, not
// frames (main.go): one front may serve several frontend processes.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
)

const (
	kindCall          = 1
	kindStreamRequest = 2
	kindCancel        = 3
	kindStreamOpened  = 4
	kindStreamClosed  = 5

	kindAnswer = 1

	// maxFrame bounds what the frontend may send in one frame (a message is bounded
	// by --max-message-bytes; this is a guard against a corrupt length).
	maxFrame = 1 << 31
	// queued bounds the frames waiting for the writer; a full queue holds callers
	// back (the socket is the bottleneck then, and calls wait in HTTP/2 flow control).
	queued = 4096
)

// errGone: the frontend closed the link (it stopped, or it died).
var errGone = errors.New("the frontend's data plane is gone")

type answer struct {
	id         uint64
	code       codes.Code
	retryAfter uint32
	message    string
	body       []byte
	local      bool // the front's own (the link ended), not the frontend's
}

type backend struct {
	conn        net.Conn
	out         chan []byte
	ids         *atomic.Uint64 // shared by every link
	outstanding atomic.Int64   // requests sent and not answered: what pool.pick compares
	mu          sync.Mutex
	pending     map[uint64]chan<- answer // each channel has room for every id it waits for
	closed      bool
	gone        chan struct{}
	once        sync.Once
	err         error
}

func newBackend(conn net.Conn, ids *atomic.Uint64) *backend {
	return &backend{
		conn:    conn,
		ids:     ids,
		out:     make(chan []byte, queued),
		pending: make(map[uint64]chan<- answer),
		gone:    make(chan struct{}),
	}
}

// run reads and writes frames until the link ends; it returns why it ended.
func (b *backend) run() error {
	go b.writeLoop()
	b.readLoop()
	<-b.gone
	return b.err
}

func (b *backend) writeLoop() {
	w := bufio.NewWriterSize(b.conn, 256<<10)
	for {
		select {
		case frame := <-b.out:
			_, _ = w.Write(frame)
		case <-b.gone:
			return
		}
	more:
		for {
			select {
			case frame := <-b.out:
				_, _ = w.Write(frame)
			default:
				break more
			}
		}
		if err := w.Flush(); err != nil {
			b.fail(fmt.Errorf("writing to the frontend: %w", err))
			return
		}
	}
}

func (b *backend) readLoop() {
	r := bufio.NewReaderSize(b.conn, 256<<10)
	var header [4]byte
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = errGone
			}
			b.fail(err)
			return
		}
		size := binary.LittleEndian.Uint32(header[:])
		if size == 0 || size > maxFrame {
			b.fail(fmt.Errorf("a frame from the frontend of %d bytes", size))
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			b.fail(fmt.Errorf("reading from the frontend: %w", err))
			return
		}
		if err := b.dispatch(frame); err != nil {
			b.fail(err)
			return
		}
	}
}

func (b *backend) dispatch(frame []byte) error {
	switch frame[0] {
	case kindAnswer:
		if len(frame) < 1+8+1+4+4 {
			return fmt.Errorf("a short answer frame (%d bytes)", len(frame))
		}
		id := binary.LittleEndian.Uint64(frame[1:])
		a := answer{
			id:         id,
			code:       codes.Code(frame[9]),
			retryAfter: binary.LittleEndian.Uint32(frame[10:]),
		}
		n := int(binary.LittleEndian.Uint32(frame[14:]))
		if 18+n > len(frame) {
			return fmt.Errorf("an answer frame's message overruns it")
		}
		a.message = string(frame[18 : 18+n])
		a.body = frame[18+n:]
		b.mu.Lock()
		ch := b.pending[id]
		delete(b.pending, id)
		b.mu.Unlock()
		if ch != nil { // nil: the caller went away meanwhile
			b.outstanding.Add(-1)
			ch <- a
		}
	default:
		return fmt.Errorf("a frame of unknown kind %d from the frontend", frame[0])
	}
	return nil
}

// fail ends the link once: every call still waiting hears UNAVAILABLE.
func (b *backend) fail(err error) {
	b.once.Do(func() {
		b.err = err
		b.mu.Lock()
		b.closed = true
		waiting := b.pending
		b.pending = nil
		b.mu.Unlock()
		b.outstanding.Store(0)
		for id, ch := range waiting {
			ch <- answer{
				id: id, code: codes.Unavailable, message: errGone.Error() + "; retry the call", local: true,
			}
		}
		close(b.gone)
		_ = b.conn.Close()
	})
}

// request is one call, or one request of a stream, as the frontend reads it.
type request struct {
	kind      byte
	method    string
	seconds   float64 // left until the deadline; < 0: none
	requestID string
	context   string
	message   []byte
}

// submit sends a request; its answer will arrive on ch. It returns the request's
// id (for cancel), or an error when the link is gone.
func (b *backend) submit(r *request, ch chan<- answer) (uint64, error) {
	id := b.ids.Add(1)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errGone
	}
	b.pending[id] = ch
	b.outstanding.Add(1)
	b.mu.Unlock()
	requestID, qctx := clip(r.requestID, math.MaxUint16), clip(r.context, math.MaxUint16)
	method := clip(r.method, math.MaxUint8)
	size := 1 + 8 + 1 + len(method) + 8 + 2 + len(requestID) + 2 + len(qctx) + len(r.message)
	frame := make([]byte, 4, 4+size)
	binary.LittleEndian.PutUint32(frame, uint32(size))
	frame = append(frame, r.kind)
	frame = binary.LittleEndian.AppendUint64(frame, id)
	frame = append(frame, byte(len(method)))
	frame = append(frame, method...)
	frame = binary.LittleEndian.AppendUint64(frame, math.Float64bits(r.seconds))
	frame = binary.LittleEndian.AppendUint16(frame, uint16(len(requestID)))
	frame = append(frame, requestID...)
	frame = binary.LittleEndian.AppendUint16(frame, uint16(len(qctx)))
	frame = append(frame, qctx...)
	frame = append(frame, r.message...)
	if !b.send(frame) {
		b.forget(id)
		return 0, errGone
	}
	return id, nil
}

// cancel tells the frontend that nobody waits for id's answer any more.
func (b *backend) cancel(id uint64) {
	if b.forget(id) {
		b.notify(kindCancel, id)
	}
}

// notify sends a frame of a kind that carries only an id.
func (b *backend) notify(kind byte, id uint64) {
	frame := make([]byte, 4, 4+9)
	binary.LittleEndian.PutUint32(frame, 9)
	frame = append(frame, kind)
	frame = binary.LittleEndian.AppendUint64(frame, id)
	b.send(frame)
}

func (b *backend) send(frame []byte) bool {
	select {
	case b.out <- frame:
		return true
	case <-b.gone:
		return false
	}
}

// forget drops id's waiter; whether it was still waiting.
func (b *backend) forget(id uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.pending[id]
	if ok {
		delete(b.pending, id)
		b.outstanding.Add(-1)
	}
	return ok
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
