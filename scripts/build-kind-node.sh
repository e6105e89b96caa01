#!/usr/bin/env bash
# Build the kind node image here, from Debian packages and the Go module proxy.
#
# No image registry is reachable, so kind's kindest/node cannot be pulled and `kind
# build node-image` (which pulls etcd, pause, CoreDNS and kindnetd) cannot run. This
# builds the same thing from parts made here:
#   - scripts/kind/build-bins.sh: Kubernetes (the control plane's source and Go
#     caches), containerd, crictl, the CNI plugins, CoreDNS, pause and kind (cached);
#   - the node: scripts/kind/node.Dockerfile, FROM the Debian base that
#     scripts/debian-base.sh debootstraps (cached) plus Debian's systemd, iptables,
#     runc, and kind's own entrypoint and units at the pinned kind version;
#   - the images kubeadm runs (etcd, kube-apiserver, kube-controller-manager,
#     kube-scheduler, kube-proxy, pause, CoreDNS) built under the registry.k8s.io
#     names kubeadm asks for, and preloaded the way `kind build node-image` does it:
#     containerd started in a build container, `ctr images import`, `docker commit`.
# kind's default CNI (kindnetd) and storage (local-path-provisioner) are images too:
# the node carries a bridge CNI config and a provisioner-less StorageClass instead
# (scripts/kind/node-files/kind/manifests).
#
# The image is tagged clipper-kind-node:K8S-KEY, KEY a hash of every input (the
# binaries' versions, the base, scripts/kind/*, this script): an image with that tag
# is up to date and returned at once. Intermediate images are removed. Needs a Docker
# engine that answers (clipper/testing/kind.py's ensure_docker starts one;
# `make kind-node` runs it). Prints the image reference on stdout; progress on stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=controlplane.env
source "$here/controlplane.env"
# shellcheck source=kind/kind.env
source "$here/kind/kind.env"
cache_root="${CLIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clipper}"
export DOCKER_BUILDKIT=0 # the legacy builder: BuildKit would fetch its frontend from a registry
t0=$SECONDS
say() { echo "kind node: [$((SECONDS - t0))s] $*" >&2; }

docker info >/dev/null 2>&1 || {
    echo "build-kind-node: no Docker engine answers; start one with" \
        "'python -m clipper.testing.kind docker' or run 'make kind-node'" >&2
    exit 1
}

bins="$("$here/kind/build-bins.sh")"
tarball="$("$here/debian-base.sh")"
base="clipper-base:$(basename "$tarball" .tar | sed 's/^debian-//')"
key="$(
    {
        cat "$bins/STAMP"
        echo "$base"
        cat "$here/build-kind-node.sh" "$here/controlplane.env"
        find "$here/kind" -type f -print0 | sort -z | xargs -0 cat
    } | sha256sum | cut -c1-12
)"
image="clipper-kind-node:$KUBERNETES_VERSION-$key"
if docker image inspect "$image" >/dev/null 2>&1; then
    say "up to date: $image"
    echo "$image"
    exit 0
fi

mkdir -p "$cache_root/kind"
exec 9>"$cache_root/kind/node-image.lock"
flock 9
if docker image inspect "$image" >/dev/null 2>&1; then # built while we waited
    echo "$image"
    exit 0
fi
if ! docker image inspect "$base" >/dev/null 2>&1; then
    say "importing $tarball as $base"
    docker import --message "debootstrap, scripts/debian-base.sh" "$tarball" "$base" >/dev/null
fi

work="$(mktemp -d "$cache_root/kind/build.XXXXXX")"
stage="clipper-kind-node-stage:$key"
builder="clipper-kind-node-build-$key"
component_images=()
cleanup() {
    docker rm -f "$builder" >/dev/null 2>&1 || true
    docker rmi "$stage" "${component_images[@]}" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

quietly() { # run a command; print its output only if it fails
    local out
    out="$("$@" 2>&1)" || {
        echo "$out" >&2
        return 1
    }
}

# --- the images kubeadm runs --------------------------------------------------------
ctx="$work/components"
mkdir -p "$ctx"
cp "$here/kind/component.Dockerfile" "$here/kind/kube-proxy.Dockerfile" "$ctx/"
declare -A component_tags=(
    [etcd]="registry.k8s.io/etcd:$ETCD_TAG"
    [kube-apiserver]="registry.k8s.io/kube-apiserver:$KUBERNETES_VERSION"
    [kube-controller-manager]="registry.k8s.io/kube-controller-manager:$KUBERNETES_VERSION"
    [kube-scheduler]="registry.k8s.io/kube-scheduler:$KUBERNETES_VERSION"
    [pause]="registry.k8s.io/pause:$PAUSE_TAG"
    [coredns]="registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
)
for binary in "${!component_tags[@]}"; do
    cp "$bins/bin/$binary" "$ctx/"
    component_images+=("${component_tags[$binary]}")
    quietly docker build --network none --quiet --file "$ctx/component.Dockerfile" \
        --build-arg BINARY="$binary" --tag "${component_tags[$binary]}" "$ctx"
done
# pause and CoreDNS are run by their images' entrypoints (the kubelet's sandbox; the
# coredns Deployment gives only args), as upstream's images are.
for binary in pause coredns; do
    printf 'FROM %s\nENTRYPOINT ["/usr/local/bin/%s"]\n' "${component_tags[$binary]}" "$binary" |
        quietly docker build --network none --quiet --tag "${component_tags[$binary]}" -
done
cp "$bins/bin/kube-proxy" "$ctx/"
component_images+=("registry.k8s.io/kube-proxy:$KUBERNETES_VERSION")
quietly docker build --quiet --file "$ctx/kube-proxy.Dockerfile" --build-arg BASE="$base" \
    --tag "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION" "$ctx"
docker save "${component_images[@]}" -o "$work/images.tar"
say "built ${#component_images[@]} component images ($(du -h "$work/images.tar" | cut -f1))"

# --- the node -------------------------------------------------------------------------
ctx="$work/node"
mkdir -p "$ctx/bin"
cp -r "$bins/kind-files" "$ctx/kind-files"
cp -r "$here/kind/node-files" "$ctx/node-files"
cp -r "$bins/bin/." "$ctx/bin/"
quietly docker build --quiet --file "$here/kind/node.Dockerfile" --build-arg BASE="$base" \
    --build-arg KUBERNETES_VERSION="$KUBERNETES_VERSION" --tag "$stage" "$ctx"
say "built the node's file system"

# Preload the images: containerd in a build container, `ctr images import` (pinned,
# not unpacked: kind's own importer's flags), then commit. kind mounts a volume at
# /var, which starts as a copy of the image's /var, so the store comes with it.
docker run -d --name "$builder" --privileged --entrypoint sleep "$stage" infinity >/dev/null
docker cp "$work/images.tar" "$builder:/images.tar"
docker exec "$builder" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
for _ in $(seq 1 60); do
    docker exec "$builder" ctr version >/dev/null 2>&1 && break
    sleep 1
done
quietly docker exec "$builder" ctr --namespace=k8s.io images import \
    --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests /images.tar
# A multi-image archive is also imported as one index named import-DATE: not an image
# anyone runs.
docker exec "$builder" bash -c 'ctr --namespace=k8s.io images ls -q | grep "^import-" |
    xargs -r ctr --namespace=k8s.io images rm' >/dev/null 2>&1
docker exec "$builder" bash -c 'pkill containerd; for _ in $(seq 1 30); do pgrep containerd >/dev/null || break; sleep 1; done
    rm -f /images.tar /var/log/containerd-build.log'
docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --change 'CMD []' \
    --change "LABEL dev.clipper.inputs=$key dev.clipper.kubernetes=$KUBERNETES_VERSION" \
    "$builder" "$image" >/dev/null
# Node images of earlier inputs are 1.5 GB each: keep only this one.
docker image ls --format '{{.Repository}}:{{.Tag}}' clipper-kind-node | grep -vxF "$image" |
    xargs -r docker rmi >/dev/null 2>&1 || true
say "built $image ($(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) MB)"
echo "$image"
