# shellcheck shell=bash
# The part scripts/build-*.sh share: a Go build that runs once into a versioned cache.
#
# Each build (control plane, helm, S3 server) lives in
# ${CLIPPER_CACHE_DIR:-~/.cache/clipper}/NAME-VERSION with a STAMP naming exactly what
# was built, so a complete cache returns at once; a lock keeps two concurrent runs from
# both building; the Go module and build caches are shared by all of them, so a module
# two builds need is downloaded once. clipper/testing/k8s_install.py (cache_root) reads
# the same location: keep the two in step.
#
# Sourced, not run. The caller sets `dest` (the cache folder) and `want` (the STAMP
# text) and defines `complete` (is $dest a whole build of $want?), then calls
# `cached_build_start` before building into "$dest.new" and `cached_build_finish` after.

cache_root="${CLIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clipper}"

# cached_build_start LABEL LOCK SCRIPT: exit 0 when $dest is complete; else take the
# lock $cache_root/LOCK (and check again: another run may have built it meanwhile),
# check for `go` and point it at the shared caches.
cached_build_start() {
    local label=$1 lock=$2 script=$3
    if complete; then
        echo "$label: cached in $dest ($want)"
        exit 0
    fi
    mkdir -p "$cache_root"
    exec 9>"$cache_root/$lock"
    flock 9
    if complete; then # another run built it while we waited for the lock
        echo "$label: cached in $dest ($want)"
        exit 0
    fi
    command -v go >/dev/null || {
        echo "$script: 'go' not found; install Go 1.26 or newer" >&2
        exit 1
    }
    export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
    export GOMODCACHE="$cache_root/go/mod" GOCACHE="$cache_root/go/build"
}

# cached_build_finish: stamp "$dest.new" and put it in place of $dest.
cached_build_finish() {
    echo "$want" >"$dest.new/STAMP"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
}
