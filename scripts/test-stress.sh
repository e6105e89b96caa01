#!/usr/bin/env bash
# Run the test suite on a busy machine: one core kept busy by a CPU hog the whole time.
#
#   scripts/test-stress.sh [PYTEST ARGS...]     (make test-stress; default: tests)
#
# Runs `pytest` (the command `make test` runs, without the lint) RUNS times in a row
# (default 3), printing each run's duration and result, and stops at the first
# failure. The hog is `stress-ng --cpu 1` (installed with apt-get if missing), bounded
# by its own --timeout and killed by a trap however this script ends. The waits in the
# tests scale by CLIPPER_TEST_TIMEOUT_SCALE (default here: as under CI, 3).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
BIN="${BIN:-.venv/bin}"
HOG_CPUS="${HOG_CPUS:-1}"
HOG_SECONDS="${HOG_SECONDS:-$((RUNS * 1800))}" # an upper bound; the trap ends it sooner
export CI="${CI:-true}"

if ! command -v stress-ng >/dev/null; then
    echo "test-stress: installing stress-ng" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q stress-ng >/dev/null
fi

HOG="" PYTEST=""
cleanup() {
    # pytest runs its teardowns (servers, control plane) on SIGINT, not on SIGTERM:
    # interrupt it, give it 60 s, then kill it.
    if [ -n "$PYTEST" ]; then
        kill -INT "$PYTEST" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$PYTEST" 2>/dev/null || break; sleep 1; done
        kill -KILL "$PYTEST" 2>/dev/null || true
    fi
    [ -z "$HOG" ] || kill "$HOG" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stress-ng --cpu "$HOG_CPUS" --timeout "${HOG_SECONDS}s" --quiet &
HOG=$!
echo "test-stress: stress-ng --cpu $HOG_CPUS running (pid $HOG) on $(nproc) cores; $RUNS runs"

ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(tests)
for run in $(seq 1 "$RUNS"); do
    started=$(date +%s)
    # In the background, so that a signal to this script is handled at once; with job
    # control on (set -m), because a non-interactive shell starts background jobs with
    # SIGINT ignored, and the cleanup interrupts pytest so that its teardowns run.
    set -m
    "$BIN/pytest" "${ARGS[@]}" &
    PYTEST=$!
    set +m
    if wait "$PYTEST"; then status=passed; else status=FAILED; fi
    PYTEST=""
    echo "test-stress: run $run/$RUNS $status in $(($(date +%s) - started))s"
    if [ "$status" = FAILED ]; then
        exit 1
    fi
done
echo "test-stress: $RUNS runs in a row passed under stress-ng --cpu $HOG_CPUS"
