#!/usr/bin/env bash
# Build the tests' S3-compatible server (SeaweedFS's `weed`) from the Go module proxy,
# once, into a cache keyed by its version.
#
# The storage tests fetch models over s3:// from a real S3 server, not a mock of the
# client library. SeaweedFS (Apache-2.0) is served by the Go module proxy and has one
# binary, `weed`, whose `server -s3` mode is a complete S3 endpoint with SigV4 auth.
# Like scripts/build-controlplane.sh: the binary and the Go caches live under
# ${CLIPPER_CACHE_DIR:-~/.cache/clipper}; a stamp names the version, so a complete
# cache returns at once; a lock keeps two concurrent runs from both building.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=s3server.env
source "$here/s3server.env"
# shellcheck source=lib/cached-build.sh
source "$here/lib/cached-build.sh"

dest="$cache_root/seaweedfs-$SEAWEEDFS_VERSION"
want="seaweedfs=$SEAWEEDFS_VERSION"

complete() { [[ -f "$dest/STAMP" && "$(cat "$dest/STAMP")" == "$want" && -x "$dest/bin/weed" ]]; }

cached_build_start "s3 server" s3-build.lock build-s3-server
export GOFLAGS="-mod=mod -buildvcs=false"

work="$(mktemp -d "${TMPDIR:-/tmp}/clipper-s3server.XXXXXX")"
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
say() { echo "s3 server: [$((SECONDS - t0))s] $*"; }

say "building SeaweedFS $SEAWEEDFS_VERSION with $(go version)"
mod="$work/mod"
mkdir -p "$mod" "$work/bin"
printf 'module clipper.invalid/s3server-build\n\ngo %s\n' "$(go env GOVERSION | sed 's/^go//')" \
    >"$mod/go.mod"
(cd "$mod" && go get "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" &&
    go build -trimpath -gcflags="all=-dwarf=false" -ldflags="-s -w" -o "$work/bin/" \
        github.com/seaweedfs/seaweedfs/weed)

rm -rf "$dest.new"
mkdir -p "$dest.new"
mv "$work/bin" "$dest.new/bin"
cached_build_finish
say "done: $dest/bin/weed"
