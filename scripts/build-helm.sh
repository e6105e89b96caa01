#!/usr/bin/env bash
# Build the real `helm` CLI from its Go module, once, into a cache.
#
# The chart in helm/clipper is checked with the real helm (`helm lint --strict`,
# `helm template`, `helm install` against the test control plane), not a Python
# re-implementation of Go templates. There is no binary download here, only the Go
# module proxy, so helm is `go install`ed at the version pinned in
# scripts/controlplane.env (HELM_VERSION), into
# ${CLIPPER_CACHE_DIR:-~/.cache/clipper}/helm-$HELM_VERSION/bin, with the same Go
# module and build caches as the control plane. A stamp file makes a complete cache
# return at once; the control plane's lock keeps two concurrent builds apart.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=controlplane.env
source "$here/controlplane.env"
# shellcheck source=lib/cached-build.sh
source "$here/lib/cached-build.sh"

dest="$cache_root/helm-$HELM_VERSION"
want="helm=$HELM_VERSION"

complete() {
    [[ -f "$dest/STAMP" && "$(cat "$dest/STAMP")" == "$want" && -x "$dest/bin/helm" ]]
}

cached_build_start helm build.lock build-helm
export GOFLAGS="-buildvcs=false"
t0=$SECONDS
rm -rf "$dest.new"
mkdir -p "$dest.new/bin"
echo "helm: building $HELM_VERSION with $(go version)"
# helm prints its version from this variable; `go install` leaves it at "v4.x-dev".
GOBIN="$dest.new/bin" go install -trimpath -gcflags="all=-dwarf=false" \
    -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
cached_build_finish
echo "helm: [$((SECONDS - t0))s] done: $dest/bin/helm"
