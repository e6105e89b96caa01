package main

// The OIP service, relayed: every call of inference.GRPCInferenceService reaches
// the frontend as its raw message and goes back as the raw answer. The front
// never decodes a tensor or knows an app: validation, selection, batching,
// errors and their messages are the Python frontend's, exactly as over grpc.aio.
// What the front does itself is what grpc.aio did: HTTP/2, the bound on calls at
// once, and ModelStreamInfer's stream (reading, the in-flight bound, writing).

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	service      = "/inference.GRPCInferenceService/"
	streamMethod = service + "ModelStreamInfer"
	// closedMessage is what a stream that the server's stop ends says (as grpc.aio did).
	closedMessage = "the frontend is shutting down: requests not answered on this stream " +
		"were not read; send them again on a new stream"
	// errNone: no frontend process is linked (they are all restarting).
	errNone = "no frontend process is serving this gRPC front right now; retry the call"
)

type front struct {
	pool      *pool
	maxCalls  int64
	calls     atomic.Int64
	streamMax int
	refused   refusals      // errors the front answered itself (refusals.go)
	closing   chan struct{} // closed when the server stops: streams stop reading
	closeOnce sync.Once
}

func (f *front) close() { f.closeOnce.Do(func() { close(f.closing) }) }

// handle serves every call of every method the server has no handler for.
func (f *front) handle(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	if !strings.HasPrefix(method, service) {
		f.refused.count(apiCall, codes.Unimplemented)
		return status.Errorf(codes.Unimplemented, "unknown service or method %s", method)
	}
	api := apiCall
	if method == streamMethod {
		api = apiStream
	}
	if f.calls.Add(1) > f.maxCalls {
		f.calls.Add(-1)
		f.refused.count(api, codes.ResourceExhausted)
		return status.Errorf(codes.ResourceExhausted,
			"the frontend is serving its limit of %d gRPC calls at once "+
				"(--grpc-max-concurrent-rpcs); retry later", f.maxCalls)
	}
	defer f.calls.Add(-1)
	head := callHead(ss, method)
	if method == streamMethod {
		return f.stream(ss, head)
	}
	var message []byte
	if err := ss.RecvMsg(&message); err != nil {
		return err
	}
	head.kind, head.message = kindCall, message
	answers := make(chan answer, 1)
	b := f.pool.pick()
	if b == nil {
		f.refused.count(apiCall, codes.Unavailable)
		return status.Error(codes.Unavailable, errNone)
	}
	id, err := b.submit(head, answers)
	if err != nil {
		f.refused.count(apiCall, codes.Unavailable)
		return status.Error(codes.Unavailable, err.Error()+"; retry the call")
	}
	select {
	case a := <-answers:
		if a.local {
			f.refused.count(apiCall, a.code)
		}
		if a.code != codes.OK {
			if a.retryAfter > 0 {
				ss.SetTrailer(metadata.Pairs("retry-after", strconv.Itoa(int(a.retryAfter))))
			}
			return status.Error(a.code, a.message)
		}
		return ss.SendMsg(&a.body)
	case <-ss.Context().Done():
		b.cancel(id)
		return status.FromContextError(ss.Context().Err()).Err()
	}
}

// callHead: what the frontend needs of a call besides its message.
func callHead(ss grpc.ServerStream, method string) *request {
	ctx := ss.Context()
	head := &request{method: method[len(service):], seconds: secondsLeft(ctx)}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		head.requestID = first(md.Get("x-request-id"))
		head.context = first(md.Get("x-clipper-context"))
	}
	return head
}

// secondsLeft: until the call's deadline, now; -1 for none.
func secondsLeft(ctx context.Context) float64 {
	if deadline, ok := ctx.Deadline(); ok {
		return max(0, time.Until(deadline).Seconds())
	}
	return -1
}

func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// stream serves one ModelStreamInfer call: requests are read as long as fewer
// than streamMax are unanswered (past that the client waits in HTTP/2 flow
// control), each goes to the frontend at once, and answers are written in the
// order they come back (the client matches them by id). A request's error is
// its answer (the frontend writes it so); the stream ends when the client has
// closed its side and every answer is written, or, when the server stops, once
// the answers to what was read are written, UNAVAILABLE.
func (f *front) stream(ss grpc.ServerStream, head *request) error {
	// One frontend process counts the stream (clipper_frontend_grpc_streams).
	if home := f.pool.pick(); home != nil {
		streamID := f.pool.ids.Add(1)
		home.notify(kindStreamOpened, streamID)
		defer home.notify(kindStreamClosed, streamID)
	}
	ctx := ss.Context()
	answers := make(chan answer, f.streamMax)
	slots := make(chan struct{}, f.streamMax)
	type state struct {
		sync.Mutex
		ids     map[uint64]*backend // sent, not answered: where
		reading bool
		stopped bool // the server stops: read nothing more
		readErr error
		wake    chan struct{}
	}
	s := &state{ids: make(map[uint64]*backend), reading: true, wake: make(chan struct{}, 1)}
	poke := func() {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	go func() { // the reader
		defer poke()
		for {
			select {
			case slots <- struct{}{}:
			case <-f.closing:
				s.Lock()
				s.reading, s.stopped = false, true
				s.Unlock()
				return
			case <-ctx.Done():
				return
			}
			var message []byte
			err := ss.RecvMsg(&message)
			s.Lock()
			if err != nil || s.stopped {
				s.reading = false
				if err != nil && !errors.Is(err, io.EOF) {
					s.readErr = err
				}
				s.Unlock()
				return
			}
			r := *head // the stream's deadline, as it stands when this request is read
			r.kind, r.message, r.seconds = kindStreamRequest, message, secondsLeft(ctx)
			b := f.pool.pick()
			if b == nil {
				f.refused.count(apiStream, codes.Unavailable)
				s.reading, s.readErr = false, status.Error(codes.Unavailable, errNone)
				s.Unlock()
				return
			}
			id, err := b.submit(&r, answers)
			if err != nil {
				f.refused.count(apiStream, codes.Unavailable)
				s.reading, s.readErr = false, status.Error(codes.Unavailable, err.Error())
				s.Unlock()
				return
			}
			s.ids[id] = b
			s.Unlock()
		}
	}()
	closing := f.closing
	for {
		s.Lock()
		done := !s.reading && len(s.ids) == 0
		stopped, readErr := s.stopped, s.readErr
		s.Unlock()
		if done {
			if readErr != nil {
				return readErr
			}
			if stopped {
				return status.Error(codes.Unavailable, closedMessage)
			}
			return nil
		}
		select {
		case a := <-answers:
			if a.code != codes.OK { // the link to a frontend process is gone
				if a.local {
					f.refused.count(apiStream, a.code)
				}
				f.cancelAll(s.ids, &s.Mutex)
				return status.Error(a.code, a.message)
			}
			if err := ss.SendMsg(&a.body); err != nil {
				f.cancelAll(s.ids, &s.Mutex)
				return err
			}
			s.Lock()
			delete(s.ids, a.id)
			s.Unlock()
			<-slots
		case <-s.wake:
		case <-closing:
			// The reader may be blocked in RecvMsg: it ends with the call. What it
			// reads from now on is dropped (stopped), never sent.
			closing = nil
			s.Lock()
			s.reading, s.stopped = false, true
			s.Unlock()
		case <-ctx.Done():
			f.cancelAll(s.ids, &s.Mutex)
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (f *front) cancelAll(ids map[uint64]*backend, mu *sync.Mutex) {
	mu.Lock()
	defer mu.Unlock()
	for id, b := range ids {
		b.cancel(id)
	}
	clear(ids)
}
