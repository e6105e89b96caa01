#!/usr/bin/env bash
# Build Clipper's three images for real, with nothing but Debian's packages and PyPI.
#
#   clipper:VERSION             the query frontend and the operator   (Dockerfile)
#   clipper-model:VERSION       CPU model container                   (model_wrappers/Dockerfile)
#   clipper-model:VERSION-cuda  CUDA model container, PyPI's torch    (model_wrappers/Dockerfile.cuda)
#
# No image registry is reachable where Clipper is built, so:
#   - the Docker engine is Debian's `docker.io` (installed with apt when absent);
#     `dockerd` is started when none answers, and stopped again on exit (a trap);
#   - the base is a debootstrapped Debian of this machine's release
#     (scripts/debian-base.sh, cached), `docker import`ed as clipper-base:RELEASE-KEY;
#   - the clipper image also gets clipper-grpc-front, the frontend's native gRPC
#     front (scripts/build-grpc-front.sh: static Go, cached);
#   - the wheels are built on the host (`pip wheel`, this Python: the same minor
#     version as the base's, which is checked) into a folder that is the build
#     context, and installed offline (`--network none`, `pip --no-index`).
# An image whose inputs (Dockerfile, base, the project's sources) have not changed
# since it was built is not rebuilt: its `dev.clipper.inputs` label holds their hash
# (so its revision label names the commit it was built at, whose sources are the same).
# CLIPPER_IMAGES_REBUILD=1 rebuilds anyway (e.g. to pick up new dependency releases).
#
# Then it prints the images' sizes and smoke-tests each one: `clipper --version` in
# a container with no capabilities, a read-only root and a non-root user, then the
# image tests (tests/images, `pytest --images`: image config, labels, no compiler,
# the CPU model image serving a freshly trained sklearn model over OIP gRPC).
#
#   scripts/build-images.sh                       # all three
#   scripts/build-images.sh clipper clipper-model # only these (names: clipper,
#                                                 # clipper-model, clipper-model-cuda)
#   CLIPPER_IMAGES_SMOKE=0 scripts/build-images.sh   # build only
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$repo/.venv/bin/python}"
cache_root="${CLIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clipper}"
work="$cache_root/images"
mkdir -p "$work"
# One build at a time: two would share the engine, the contexts and the wheelhouse.
exec 8>"$work/build.lock"
flock 8

log() { echo "build-images: $*" >&2; }

# --- tools ---------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    log "installing ${need[*]} with apt"
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${need[@]}"
fi

# --- the engine ----------------------------------------------------------------------
# The legacy builder: BuildKit would fetch its Dockerfile frontend from a registry.
export DOCKER_BUILDKIT=0
started_dockerd=""
cleanup() {
    rm -rf "$work"/context-*
    # Images that builds replaced, and build stages: a CUDA build stage alone is ~9 GB.
    if docker info >/dev/null 2>&1; then
        docker image prune --force --filter "label=dev.clipper.inputs" >/dev/null || true
        docker image prune --force --filter "label=dev.clipper.stage=build" >/dev/null || true
    fi
    stop_dockerd
}
stop_dockerd() {
    [[ -n "$started_dockerd" ]] || return 0
    log "stopping the dockerd this script started (pid $started_dockerd)"
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$started_dockerd" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -9 "$started_dockerd" 2>/dev/null || true
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
    log "no Docker engine answers: starting dockerd (log: $work/dockerd.log)"
    dockerd >"$work/dockerd.log" 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$started_dockerd" 2>/dev/null || {
            tail -20 "$work/dockerd.log" >&2
            log "dockerd exited"
            exit 1
        }
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || {
        tail -20 "$work/dockerd.log" >&2
        log "dockerd did not answer within 60 s"
        exit 1
    }
fi

# --- the base ------------------------------------------------------------------------
tarball="$("$repo/scripts/debian-base.sh")"
base="clipper-base:$(basename "$tarball" .tar | sed 's/^debian-//')"
if ! docker image inspect "$base" >/dev/null 2>&1; then
    log "importing $tarball as $base"
    docker import --message "debootstrap, scripts/debian-base.sh" "$tarball" "$base" >/dev/null
fi
host_python="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
base_python="$(docker run --rm --network none "$base" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$host_python" != "$base_python" ]]; then
    log "the wheels are built with Python $host_python ($PY) but the base has $base_python"
    exit 1
fi

# --- the images ----------------------------------------------------------------------
version="$("$PY" -c 'import tomllib; print(tomllib.load(open("'"$repo"'/pyproject.toml", "rb"))["project"]["version"])')"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
git -C "$repo" diff --quiet HEAD 2>/dev/null || revision="$revision-dirty"
source_url="${CLIPPER_IMAGE_SOURCE:-$(git -C "$repo" remote get-url origin 2>/dev/null || echo unknown)}"
sources_hash="$(cd "$repo" && find pyproject.toml README.md clipper model_wrappers frontend operator crds \
    -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | sort -z |
    xargs -0 sha256sum | sha256sum | cut -c1-16)"

declare -A dockerfiles=(
    [clipper]=Dockerfile
    [clipper-model]=model_wrappers/Dockerfile
    [clipper-model-cuda]=model_wrappers/Dockerfile.cuda
)
declare -A tags=(
    [clipper]="clipper:$version"
    [clipper-model]="clipper-model:$version"
    [clipper-model-cuda]="clipper-model:$version-cuda"
)
names=("$@")
((${#names[@]})) || names=(clipper clipper-model clipper-model-cuda)
declare -A seconds=()

# Run a command; print its output only if it fails (the client's warning that the
# legacy builder is deprecated otherwise fills the log).
quietly() {
    local out
    out="$("$@" 2>&1)" || {
        echo "$out" >&2
        return 1
    }
}

build() {
    local name="$1" dockerfile="$repo/${dockerfiles[$1]}" tag="${tags[$1]}"
    local requirement inputs current context started
    requirement="$(sed -n 's/^ARG REQUIREMENT=//p' "$dockerfile")"
    inputs="$(printf '%s\n' "$base" "$sources_hash" "$source_url" |
        cat - "$dockerfile" | sha256sum | cut -c1-16)"
    current="$(docker image inspect -f '{{index .Config.Labels "dev.clipper.inputs"}}' "$tag" 2>/dev/null || true)"
    if [[ "$current" == "$inputs" && "${CLIPPER_IMAGES_REBUILD:-0}" != 1 ]]; then
        log "$tag: up to date (inputs $inputs)"
        seconds[$name]=0
        return
    fi
    started=$SECONDS
    # The context: exactly the wheels that REQUIREMENT resolves to, no sources. Wheels
    # downloaded once are kept in a wheelhouse and found there (--find-links) next time.
    context="$work/context-$name"
    rm -rf "$context"
    mkdir -p "$context" "$work/wheelhouse"
    log "$tag: wheels for ${requirement/clipper-k8s/$repo}"
    "$PY" -m pip wheel --quiet --disable-pip-version-check --only-binary=:all: \
        --no-binary=clipper-k8s --find-links "$work/wheelhouse" --wheel-dir "$context" \
        "${requirement/clipper-k8s/$repo}"
    # Keep new wheels, and make the context's copies hard links into the wheelhouse
    # (the CUDA wheels are 3 GB: one copy on disk, not two).
    local wheel
    for wheel in "$context"/*.whl; do
        [[ "$(basename "$wheel")" != clipper_k8s-* ]] || continue
        [[ -e "$work/wheelhouse/$(basename "$wheel")" ]] || mv "$wheel" "$work/wheelhouse/"
        ln -f "$work/wheelhouse/$(basename "$wheel")" "$wheel"
    done
    if [[ "$name" == clipper ]]; then # the frontend's native gRPC front (Go, static)
        cp "$("$repo/scripts/build-grpc-front.sh" --print)" "$context/clipper-grpc-front"
    fi
    log "$tag: docker build ($(du -sh "$context" | cut -f1) of wheels)"
    quietly docker build --network none --quiet --force-rm --file "$dockerfile" --tag "$tag" \
        --build-arg BASE="$base" --build-arg VERSION="$version" \
        --build-arg REVISION="$revision" --build-arg SOURCE="$source_url" \
        --label dev.clipper.inputs="$inputs" "$context"
    rm -rf "$context"
    # Drop what this build replaced (the previous image, the build stage) at once.
    docker image prune --force --filter "label=dev.clipper.inputs" >/dev/null
    docker image prune --force --filter "label=dev.clipper.stage=build" >/dev/null
    seconds[$name]=$((SECONDS - started))
}

for name in "${names[@]}"; do
    [[ -n "${dockerfiles[$name]:-}" ]] || {
        log "unknown image '$name' (clipper, clipper-model, clipper-model-cuda)"
        exit 2
    }
    build "$name"
done

printf '\n%-28s %10s %11s\n' IMAGE SIZE BUILD >&2
for name in "${names[@]}"; do
    size="$(docker image inspect -f '{{.Size}}' "${tags[$name]}")"
    printf '%-28s %7d MB %9d s\n' "${tags[$name]}" $((size / 1000000)) "${seconds[$name]}" >&2
done
echo >&2

# --- smoke tests ---------------------------------------------------------------------
[[ "${CLIPPER_IMAGES_SMOKE:-1}" == 1 ]] || exit 0
for name in "${names[@]}"; do
    docker run --rm --network none --cap-drop=ALL --read-only --user 10001:10001 \
        --entrypoint clipper "${tags[$name]}" --version
done
CLIPPER_IMAGES="$(for n in "${names[@]}"; do printf '%s ' "$n"; done)" \
    "$PY" -m pytest "$repo/tests/images" --images -q -p no:randomly
