#!/usr/bin/env bash
# Build clipper-grpc-front, the frontend's native gRPC front (frontend/grpc/front, Go),
# once per source, into a cache; then install it where the frontend looks for it.
#
#   scripts/build-grpc-front.sh [BINDIR]    # BINDIR: e.g. .venv/bin (a copy goes there)
#   scripts/build-grpc-front.sh --print     # build if needed, print the cached binary
#
# The cache key is a hash of the module's files (go.mod, go.sum, *.go) and the Go
# version, so an edit rebuilds it and a fresh clone of the same sources does not.
# The build is static (CGO_ENABLED=0): the same binary runs on this machine, in the
# `clipper` image (scripts/build-images.sh copies it in) and on any Linux.
#
# Without Go the frontend still serves gRPC, with grpc.aio (`--grpc-server auto`
# says so in its log), so this script then only says so and exits 0 (1 with
# --print): `make run-example` works on a machine without Go; `make test` needs Go.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$here/../frontend/grpc/front" && pwd)"
target="${1:-}"

if ! command -v go >/dev/null; then
    echo "grpc-front: 'go' not found: the frontend will serve gRPC with grpc.aio" \
        "(install Go 1.26+ and run 'make grpc-front' for the native front)" >&2
    [[ "$target" != --print ]] || exit 1
    exit 0
fi

# shellcheck source=lib/cached-build.sh
source "$here/lib/cached-build.sh"
key="$( (cd "$source_dir" && sha256sum go.mod go.sum ./*.go && GOTOOLCHAIN=local go version) |
    sha256sum | cut -c1-16)"
dest="$cache_root/grpc-front-$key"
want="grpc-front=$key"

complete() {
    [[ -f "$dest/STAMP" && "$(cat "$dest/STAMP")" == "$want" && -x "$dest/clipper-grpc-front" ]]
}

install_to() {
    [[ -z "$target" ]] && return
    if [[ "$target" == --print ]]; then
        echo "$dest/clipper-grpc-front"
        return
    fi
    mkdir -p "$target"
    cp -f "$dest/clipper-grpc-front" "$target/clipper-grpc-front.new"
    mv -f "$target/clipper-grpc-front.new" "$target/clipper-grpc-front"
}

if complete; then
    install_to
    exit 0
fi
# cached_build_start exits 0 when the cache is complete: install from a subshell's exit.
trap 'complete && install_to' EXIT
cached_build_start grpc-front build.lock build-grpc-front >&2
export GOFLAGS="-buildvcs=false -mod=readonly"
t0=$SECONDS
rm -rf "$dest.new"
mkdir -p "$dest.new"
echo "grpc-front: building $key with $(go version)" >&2
(cd "$source_dir" && go build -trimpath -ldflags="-s -w" -o "$dest.new/clipper-grpc-front" .)
cached_build_finish
echo "grpc-front: [$((SECONDS - t0))s] done: $dest/clipper-grpc-front" >&2
