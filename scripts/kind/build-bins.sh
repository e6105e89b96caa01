#!/usr/bin/env bash
# Build the kind node's binaries from the Go module proxy, once, into a cache.
#
# The Kubernetes node and control-plane components (kubelet, kubeadm, kube-proxy,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl) and etcd are built
# exactly as scripts/build-controlplane.sh builds its control plane (the same
# throwaway go.mod, the same flags, the shared Go caches, so the packages the two
# share compile once); containerd, crictl, the CNI plugins, CoreDNS and kind itself
# each get a throwaway go.mod that requires their released module; the pause binary
# is compiled from Kubernetes' own build/pause/linux/pause.c (static, with the host's
# C compiler). Debian's runc is used as is (apt, in the node image).
#
# Output: ${CLIPPER_CACHE_DIR:-~/.cache/clipper}/kind-bin-KEY/bin (cni/ inside), a
# STAMP naming the versions. Called by scripts/build-kind-node.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../controlplane.env
source "$here/../controlplane.env"
# shellcheck source=kind.env
source "$here/kind.env"
# shellcheck source=../lib/cached-build.sh
source "$here/../lib/cached-build.sh"

want="kubernetes=$KUBERNETES_VERSION etcd=$ETCD_VERSION kind=$KIND_VERSION containerd=$CONTAINERD_VERSION"
want+=" cri-tools=$CRI_TOOLS_VERSION cni-plugins=$CNI_PLUGINS_VERSION coredns=$COREDNS_VERSION"
key="$(printf '%s\n' "$want" | cat - "$here/build-bins.sh" | sha256sum | cut -c1-12)"
dest="$cache_root/kind-bin-$key"
binaries=(kubelet kubeadm kube-proxy kube-apiserver kube-controller-manager kube-scheduler kubectl
    etcd containerd containerd-shim-runc-v2 ctr crictl kind pause coredns
    cni/bridge cni/host-local cni/loopback cni/portmap)

complete() {
    [[ -f "$dest/STAMP" && "$(cat "$dest/STAMP")" == "$want" ]] || return 1
    local b
    for b in "${binaries[@]}"; do [[ -x "$dest/bin/$b" ]] || return 1; done
}

if complete; then
    echo "$dest"
    exit 0
fi
mkdir -p "$cache_root"
# A lock keeps two concurrent runs from both building (scripts/lib/cached-build.sh's
# pattern; its cached_build_start is not used because stdout here carries the path).
exec 9>"$cache_root/kind-bin.lock"
flock 9
if complete; then # another run built it while we waited for the lock
    echo "$dest"
    exit 0
fi
command -v go >/dev/null || {
    echo "build-kind-bins: 'go' not found; install Go 1.26 or newer" >&2
    exit 1
}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
export GOMODCACHE="$cache_root/go/mod" GOCACHE="$cache_root/go/build"
export GOFLAGS="-mod=mod -buildvcs=false"
ldflags_base="-s -w"
gcflags="all=-dwarf=false"

work="$(mktemp -d "${TMPDIR:-/tmp}/clipper-kind-bin.XXXXXX")"
trap 'rm -rf "$work"' EXIT
out="$work/bin"
mkdir -p "$out/cni"
t0=$SECONDS
say() { echo "kind binaries: [$((SECONDS - t0))s] $*" >&2; }
go_version="$(go env GOVERSION | sed 's/^go//')"
# throwaway MODULE: a folder with a go.mod of its own, where `go get` resolves MODULE.
throwaway() {
    mkdir -p "$work/$1"
    printf 'module clipper.invalid/%s-build\n\ngo %s\n' "$1" "$go_version" >"$work/$1/go.mod"
    echo "$work/$1"
}

# --- Kubernetes and etcd: the same module graph as scripts/build-controlplane.sh ----
say "building Kubernetes $KUBERNETES_VERSION and etcd $ETCD_VERSION with $(go version)"
k8s_mod="$work/k8s"
mkdir -p "$k8s_mod"
staging_version="v0.${KUBERNETES_VERSION#v1.}"
upstream_gomod="$(cd "$k8s_mod" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
{
    echo "module clipper.invalid/controlplane-build"
    echo
    echo "go $go_version"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\t\1 => \1 '"$staging_version"'#p' \
        "$upstream_gomod"
    echo ")"
} >"$k8s_mod/go.mod"
(cd "$k8s_mod" && go get "k8s.io/kubernetes@$KUBERNETES_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION") >&2
minor="${KUBERNETES_VERSION#v1.}"
minor="${minor%%.*}"
k8s_ldflags="$ldflags_base"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    k8s_ldflags+=" -X $pkg.gitTreeState=clean"
done
(cd "$k8s_mod" && go build -trimpath -gcflags="$gcflags" -ldflags="$k8s_ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kubeadm \
    k8s.io/kubernetes/cmd/kube-proxy \
    go.etcd.io/etcd/server/v3) >&2
mv "$out/server" "$out/etcd"
say "built the Kubernetes components and etcd"

# The pause container: Kubernetes' own C source, static.
k8s_dir="$(cd "$k8s_mod" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
command -v cc >/dev/null || {
    echo "build-kind-bins: no C compiler for the pause binary (apt-get install gcc libc6-dev)" >&2
    exit 1
}
cc -Os -Wall -Werror -static -DVERSION="v$PAUSE_TAG-clipper" -o "$out/pause" "$k8s_dir/build/pause/linux/pause.c"
strip "$out/pause" 2>/dev/null || true
say "built pause"

# --- containerd, crictl, the CNI plugins, CoreDNS, kind -----------------------------
d="$(throwaway containerd)"
(cd "$d" && go get "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" &&
    go build -trimpath -tags "no_aufs no_zfs no_btrfs no_devmapper" -gcflags="$gcflags" \
        -ldflags="$ldflags_base -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
        -o "$out/" github.com/containerd/containerd/v2/cmd/containerd \
        github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
        github.com/containerd/containerd/v2/cmd/ctr) >&2
say "built containerd $CONTAINERD_VERSION"
d="$(throwaway crictl)"
(cd "$d" && go get "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" &&
    go build -trimpath -gcflags="$gcflags" -ldflags="$ldflags_base" -o "$out/" \
        sigs.k8s.io/cri-tools/cmd/crictl) >&2
d="$(throwaway cni)"
(cd "$d" && go get "github.com/containernetworking/plugins@$CNI_PLUGINS_VERSION" &&
    go build -trimpath -gcflags="$gcflags" -ldflags="$ldflags_base" -o "$out/cni/" \
        github.com/containernetworking/plugins/plugins/main/bridge \
        github.com/containernetworking/plugins/plugins/main/loopback \
        github.com/containernetworking/plugins/plugins/ipam/host-local \
        github.com/containernetworking/plugins/plugins/meta/portmap) >&2
say "built crictl $CRI_TOOLS_VERSION and the CNI plugins $CNI_PLUGINS_VERSION"
d="$(throwaway coredns)"
(cd "$d" && go get "github.com/coredns/coredns@$COREDNS_VERSION" &&
    go build -trimpath -gcflags="$gcflags" -ldflags="$ldflags_base" -o "$out/" \
        github.com/coredns/coredns) >&2
say "built CoreDNS $COREDNS_VERSION"
d="$(throwaway kind)"
(cd "$d" && go get "sigs.k8s.io/kind@$KIND_VERSION" &&
    go build -trimpath -gcflags="$gcflags" -ldflags="$ldflags_base" -o "$out/" sigs.k8s.io/kind) >&2
# kind's node-image files (entrypoint, systemd units, containerd config) at this version.
cp -r "$(cd "$d" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)/images/base/files" "$work/kind-files"
chmod -R u+w "$work/kind-files"
say "built kind $KIND_VERSION"

rm -rf "$dest.new"
mkdir -p "$dest.new"
mv "$out" "$dest.new/bin"
mv "$work/kind-files" "$dest.new/kind-files"
echo "$want" >"$dest.new/STAMP"
rm -rf "$dest"
mv "$dest.new" "$dest"
say "done: $dest"
echo "$dest"
