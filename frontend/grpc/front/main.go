// clipper-grpc-front: the frontend's gRPC port, served in Go.
//
// Why it exists: in Python, grpcio's cost per call is the floor of gRPC's
// throughput (a do-nothing grpc.aio servicer answers ~3,000 calls/s per core,
// less than the frontend's whole REST path), and on a stream its per-message
// read and write cost more than a REST request does. grpc-go answers a call for
// a fraction of that. So the frontend runs this program as its child: it
// terminates HTTP/2 and gRPC, and relays each call's raw message to a frontend
// process over a Unix socket, many calls per read and write (backend.go).
// Everything that makes an answer stays in Python (service.go).
//
// One front per pod: a single frontend runs its own; with --workers N the
// supervising parent runs one for all N workers, and every call goes to the
// worker with the fewest requests unanswered (pool.go).
//
// Its lifecycle is its parent's to drive, by signal: SIGUSR1 drains (health
// NOT_SERVING, still serving); SIGTERM or SIGINT stops (no new calls, streams
// answer what they read and end UNAVAILABLE, calls in flight get
// --grace-period, then it exits 0). It gets SIGTERM when its parent dies
// (PR_SET_PDEATHSIG), so it never outlives the process that would restart it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
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

type config struct {
	listen     string
	reusePort  bool
	backends   []string
	maxMessage int
	maxCalls   int64
	handshake  time.Duration
	idle       time.Duration
	streamMax  int
	grace      time.Duration
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("clipper-grpc-front: ")
	var c config
	var backends string
	parent := flag.Int("parent", 0, "the parent's pid: exit at once if it is already gone")
	flag.StringVar(&c.listen, "listen", "127.0.0.1:8081", "host:port of the gRPC port (port 0: any)")
	flag.BoolVar(&c.reusePort, "reuse-port", false, "bind with SO_REUSEPORT")
	flag.StringVar(&backends, "backend", "", "the frontend processes' Unix sockets, comma-separated (@name: abstract)")
	flag.IntVar(&c.maxMessage, "max-message-bytes", 64<<20, "largest message received or sent")
	flag.Int64Var(&c.maxCalls, "max-concurrent-rpcs", 4096, "calls at once (RESOURCE_EXHAUSTED past it)")
	flag.DurationVar(&c.handshake, "handshake-timeout", 10*time.Second, "HTTP/2 handshake limit")
	flag.DurationVar(&c.idle, "idle-timeout", 75*time.Second, "close a connection idle this long (GOAWAY)")
	flag.IntVar(&c.streamMax, "stream-max-inflight", 64, "requests in flight on one ModelStreamInfer stream")
	flag.DurationVar(&c.grace, "grace-period", 30*time.Second, "how long calls in flight may take once stopping")
	flag.Parse()
	c.backends = strings.Split(backends, ",")
	if backends == "" || c.maxCalls < 1 || c.streamMax < 1 || c.maxMessage < 1 {
		log.Print("--backend is required; --max-concurrent-rpcs, --stream-max-inflight and " +
			"--max-message-bytes must be positive")
		os.Exit(2)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0); err != nil {
		log.Printf("cannot ask for SIGTERM when the parent dies: %v", err)
	}
	if *parent != 0 && os.Getppid() != *parent {
		log.Print("the process that started this front is gone; not starting")
		os.Exit(1)
	}
	if err := run(c); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(c config) error {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	links := newPool(c.backends)
	links.connect()
	f := &front{pool: links, maxCalls: c.maxCalls, streamMax: c.streamMax, closing: make(chan struct{})}
	go f.refused.report(links)
	lc := net.ListenConfig{}
	if c.reusePort {
		lc.Control = func(_, _ string, raw syscall.RawConn) error {
			var serr error
			err := raw.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	listener, err := lc.Listen(context.Background(), "tcp", c.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", c.listen, err)
	}
	server := grpc.NewServer(
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.UnknownServiceHandler(f.handle),
		grpc.MaxRecvMsgSize(c.maxMessage),
		grpc.MaxSendMsgSize(c.maxMessage),
		grpc.ConnectionTimeout(c.handshake),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: c.idle,
			Time:              keepaliveTime,
			Timeout:           keepaliveTimeout,
		}),
	)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(server, healthServer)
	life := &lifecycle{server: server, health: healthServer, front: f, stopped: make(chan struct{})}
	// The frontend reads the port from this line (port 0 becomes a concrete one).
	fmt.Printf("clipper-grpc-front listening on %s\n", listener.Addr())
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	go func() {
		for sig := range signals {
			if sig == syscall.SIGUSR1 {
				life.drain()
			} else {
				life.stop(c.grace)
			}
		}
	}()
	if err := <-served; err != nil {
		return err
	}
	<-life.stopped // Serve returns as the stop begins: wait for the calls in flight
	links.close()
	return nil
}

// lifecycle carries out the parent's drain and stop.
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
// read is answered, calls in flight get grace, then everything is cut.
func (l *lifecycle) stop(grace time.Duration) {
	l.once.Do(func() {
		l.health.Shutdown()
		l.front.close()
		go func() {
			timer := time.AfterFunc(grace, l.server.Stop)
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
