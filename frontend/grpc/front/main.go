// clipper-grpc-front: the frontend's gRPC port, served in Go.
//
// Why it exists: in Python, grpcio's cost per call is the floor of gRPC's
// throughput (a do-nothing grpc.aio servicer answers ~3,000 calls/s per core,
// less than the frontend's whole REST path), and on a stream its per-message
// read and write cost more than a REST request does. grpc-go answers a call for
// a fraction of that. So a frontend started with --grpc-server native runs this
// program as its child: it terminates HTTP/2 and gRPC, and relays each call's raw
// message to the frontend over one Unix socket, many calls per read and write
// (backend.go). Everything that makes an answer stays in Python (service.go).
//
// One front per frontend process: it binds the gRPC port with SO_REUSEPORT when
// the frontend does (workers), and it lives and dies with its frontend: it exits
// when the link closes, and the frontend restarts it if it dies.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Keepalive pings as the Python server sends them (clipper/frontend/grpc/server.py).
const (
	keepaliveTime    = 60 * time.Second
	keepaliveTimeout = 20 * time.Second
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("clipper-grpc-front: ")
	listen := flag.String("listen", "127.0.0.1:8081", "host:port of the gRPC port (port 0: any)")
	reusePort := flag.Bool("reuse-port", false, "bind with SO_REUSEPORT (frontend workers share the port)")
	link := flag.String("backend", "", "the frontend's Unix socket (@name: an abstract one)")
	maxMessage := flag.Int("max-message-bytes", 64<<20, "largest message received or sent")
	maxCalls := flag.Int64("max-concurrent-rpcs", 4096, "calls at once (RESOURCE_EXHAUSTED past it)")
	handshake := flag.Duration("handshake-timeout", 10*time.Second, "HTTP/2 handshake limit")
	idle := flag.Duration("idle-timeout", 75*time.Second, "close a connection idle this long (GOAWAY)")
	streamMax := flag.Int("stream-max-inflight", 64, "requests in flight on one ModelStreamInfer stream")
	flag.Parse()
	if *link == "" || *maxCalls < 1 || *streamMax < 1 || *maxMessage < 1 {
		log.Print("--backend is required; --max-concurrent-rpcs, --stream-max-inflight and " +
			"--max-message-bytes must be positive")
		os.Exit(2)
	}
	if err := run(*listen, *reusePort, *link, *maxMessage, *maxCalls, *handshake, *idle, *streamMax); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(listen string, reusePort bool, link string, maxMessage int, maxCalls int64,
	handshake, idle time.Duration, streamMax int) error {
	conn, err := net.Dial("unix", link)
	if err != nil {
		return fmt.Errorf("cannot reach the frontend at %s: %w", link, err)
	}
	b := newBackend(conn)
	f := &front{backend: b, maxCalls: maxCalls, streamMax: streamMax, closing: make(chan struct{})}
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	listener, err := lc.Listen(context.Background(), "tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", listen, err)
	}
	server := grpc.NewServer(
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.UnknownServiceHandler(f.handle),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
		grpc.ConnectionTimeout(handshake),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: idle,
			Time:              keepaliveTime,
			Timeout:           keepaliveTimeout,
		}),
	)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(server, healthServer)
	ctl := &lifecycle{server: server, health: healthServer, front: f, stopped: make(chan struct{})}
	linkDone := make(chan error, 1)
	go func() { linkDone <- b.run(ctl) }()
	// The frontend reads the port from this line (port 0 becomes a concrete one).
	fmt.Printf("clipper-grpc-front listening on %s\n", listener.Addr())
	os.Stdout.Sync()
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err := <-linkDone: // the frontend went away without asking us to stop
		server.Stop()
		return fmt.Errorf("the link to the frontend closed: %w", err)
	case err := <-served:
		if err != nil {
			return err
		}
	}
	<-ctl.stopped // Serve returns as the stop begins: wait for the calls in flight
	return nil
}

// lifecycle carries out the frontend's drain and stop.
type lifecycle struct {
	server  *grpc.Server
	health  *health.Server
	front   *front
	once    sync.Once
	stopped chan struct{}
}

func (l *lifecycle) drain() {
	l.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
}

// stop: NOT_SERVING, no new calls, streams stop reading and end once what they
// read is answered, calls in flight get grace seconds, then everything is cut.
func (l *lifecycle) stop(grace float64) {
	l.once.Do(func() {
		l.health.Shutdown()
		l.front.close()
		go func() {
			timer := time.AfterFunc(time.Duration(grace*float64(time.Second)), l.server.Stop)
			l.server.GracefulStop()
			timer.Stop()
			close(l.stopped)
		}()
	})
}

// rawCodec passes OIP messages through as bytes (the frontend decodes them) and
// encodes the health service's messages as protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(*[]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
	}
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = data.Materialize()
		return nil
	}
	if _, ok := v.(proto.Message); !ok {
		return fmt.Errorf("cannot decode into %T", v)
	}
	return encoding.GetCodecV2("proto").Unmarshal(data, v)
}
