#!/usr/bin/env bash
# Build the test control plane from the Go module proxy, once, into a cache.
#
# The project's tests run against a real Kubernetes control plane: etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler from k8s.io/kubernetes,
# plus kwok for fake nodes whose pods become Running and Ready. There is no Docker
# here, so instead of kind we build the upstream components (envtest's approach) with
# the ordinary `go` client, pinned in scripts/controlplane.env.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod requires the k8s.io/* staging
# modules at v0.0.0 and points them at ./staging with replace lines, which Go ignores
# in a dependency. So a throwaway go.mod requires it and replaces every staging module
# with its published v0.X.Y. etcd's server is built in that same module graph, at the
# version Kubernetes itself requires, so the packages they share compile once; so is
# kubectl, so the tests' kubectl matches the server. kwok gets its own throwaway
# go.mod so it is built with the dependencies it was released with. Debian bookworm's
# etcd-server is 3.4.23: kube-apiserver v1.37 starts on it but finds no
# RequestWatchProgress (which consistent reads from its watch cache rely on), and 3.4
# is out of etcd's support; so etcd is built too, at the version Kubernetes requires.
#
# The binaries, and the Go module and build caches used to make them, live under
# ${CLIPPER_CACHE_DIR:-~/.cache/clipper}, outside the repository; a stamp file lists
# the versions, so a complete cache returns at once. A lock keeps two concurrent runs
# from both building.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=controlplane.env
source "$here/controlplane.env"
# shellcheck source=lib/cached-build.sh
source "$here/lib/cached-build.sh"

dest="$cache_root/k8s-$KUBERNETES_VERSION"
want="kubernetes=$KUBERNETES_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

complete() {
    [[ -f "$dest/STAMP" && "$(cat "$dest/STAMP")" == "$want" ]] || return 1
    local b
    for b in "${binaries[@]}"; do [[ -x "$dest/bin/$b" ]] || return 1; done
    [[ -f "$dest/kwok-stages.yaml" ]]
}

cached_build_start "control plane" build.lock build-controlplane
export GOFLAGS="-mod=mod -buildvcs=false"
# -s -w drop the symbol table and DWARF at link time; -dwarf=false keeps the compiler
# from generating the DWARF that would be dropped (a build cache ~25% smaller).
ldflags_base="-s -w"
gcflags="all=-dwarf=false"

work="$(mktemp -d "${TMPDIR:-/tmp}/clipper-controlplane.XXXXXX")"
trap 'rm -rf "$work"' EXIT
out="$work/bin"
mkdir -p "$out"
t0=$SECONDS
say() { echo "control plane: [$((SECONDS - t0))s] $*"; }

# --- Kubernetes and etcd -----------------------------------------------------------
say "building Kubernetes $KUBERNETES_VERSION and etcd $ETCD_VERSION with $(go version)"
k8s_mod="$work/k8s"
mkdir -p "$k8s_mod"
staging_version="v0.${KUBERNETES_VERSION#v1.}"
upstream_gomod="$(cd "$k8s_mod" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
{
    echo "module clipper.invalid/controlplane-build"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//')"
    echo
    echo "replace ("
    # Every `k8s.io/X => ./staging/src/k8s.io/X` line becomes `k8s.io/X => k8s.io/X v0.Y.Z`.
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\t\1 => \1 '"$staging_version"'#p' \
        "$upstream_gomod"
    echo ")"
} >"$k8s_mod/go.mod"
(cd "$k8s_mod" && go get "k8s.io/kubernetes@$KUBERNETES_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
say "modules resolved"

minor="${KUBERNETES_VERSION#v1.}"
minor="${minor%%.*}"
k8s_ldflags="$ldflags_base"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    k8s_ldflags+=" -X $pkg.gitTreeState=clean"
done
# One `go build` for all of them, so the packages they share compile once.
(cd "$k8s_mod" && go build -trimpath -gcflags="$gcflags" -ldflags="$k8s_ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    go.etcd.io/etcd/server/v3)
mv "$out/server" "$out/etcd"
say "built kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd"

# --- kwok ---------------------------------------------------------------------------
kwok_mod="$work/kwok"
mkdir -p "$kwok_mod"
printf 'module clipper.invalid/kwok-build\n\ngo %s\n' "$(go env GOVERSION | sed 's/^go//')" \
    >"$kwok_mod/go.mod"
(cd "$kwok_mod" && go get "sigs.k8s.io/kwok@$KWOK_VERSION" &&
    go build -trimpath -gcflags="$gcflags" -ldflags="$ldflags_base" -o "$out/" sigs.k8s.io/kwok/cmd/kwok)
# kwok moves nodes and pods along only through Stages; v0.8 has none built in. Its
# release ships the defaults (what kwokctl uses): fast node start, lease heartbeats,
# pods that become Ready, complete and delete. They become its --config file.
kwok_dir="$(cd "$kwok_mod" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"
    cat "$kwok_dir/kustomize/stage/$stage.yaml"
done >"$work/kwok-stages.yaml"
say "built kwok $KWOK_VERSION"

# --- install --------------------------------------------------------------------------
rm -rf "$dest.new"
mkdir -p "$dest.new"
mv "$out" "$dest.new/bin"
mv "$work/kwok-stages.yaml" "$dest.new/kwok-stages.yaml"
cached_build_finish
say "done: $dest/bin"
