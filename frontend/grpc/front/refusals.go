package main

// Calls the front answers itself with an error never reach a frontend process,
// so the frontend's clipper_frontend_errors_total would not count them: a call
// past --max-concurrent-rpcs (RESOURCE_EXHAUSTED), a method outside the service
// (UNIMPLEMENTED), a call with no frontend process linked or whose link ended
// (UNAVAILABLE). The front counts them by API and code and reports the counts
// to a linked frontend process every reportEvery, which adds them to that
// counter: a scrape shows every error a gRPC client saw, whichever side gave it.
// Counts that find no link (every worker restarting) wait for the next report.

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

const (
	kindRefused = 6 // front -> frontend: u64 count (the id field), u8 api, u8 code

	apiCall   = 0 // clipper_frontend_errors_total{api="oip_grpc"}
	apiStream = 1 // {api="oip_grpc_stream"}

	reportEvery = time.Second
	codeCount   = 17 // gRPC's codes, OK to Unauthenticated
)

type refusals struct {
	counts [2][codeCount]atomic.Uint64
}

// count notes one refusal; the caller returns the error it names.
func (r *refusals) count(api int, code codes.Code) {
	if int(code) < codeCount {
		r.counts[api][code].Add(1)
	}
}

// report sends what was counted since the last report to a linked frontend
// process, for as long as the front runs (a stopping front still answers calls
// in its grace period).
func (r *refusals) report(p *pool) {
	for range time.Tick(reportEvery) {
		r.flush(p)
	}
}

func (r *refusals) flush(p *pool) {
	for api := range r.counts {
		for code := range r.counts[api] {
			n := r.counts[api][code].Swap(0)
			if n == 0 {
				continue
			}
			b := p.pick()
			if b == nil || !b.send(refusedFrame(api, code, n)) {
				r.counts[api][code].Add(n) // nobody to tell now: next time
			}
		}
	}
}

func refusedFrame(api, code int, n uint64) []byte {
	frame := make([]byte, 4, 4+11)
	binary.LittleEndian.PutUint32(frame, 11)
	frame = append(frame, kindRefused)
	frame = binary.LittleEndian.AppendUint64(frame, n)
	return append(frame, byte(api), byte(code))
}
