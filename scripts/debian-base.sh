#!/usr/bin/env bash
# Build the images' base, a minimal Debian root filesystem, as a tarball, once.
#
# No image registry is reachable from the machines that build Clipper, so the base
# cannot be `FROM python:3.11-slim`: it is debootstrapped from Debian's own packages
# (the release this machine runs, so the host's `pip wheel` builds wheels for the
# same Python minor version) and later `docker import`ed by build-images.sh. The
# base holds Python, venv and CA certificates and nothing that compiles: every
# image stage installs binary wheels only, so a compiler never enters any image.
#
# The tarball is cached under ${CLIPPER_CACHE_DIR:-~/.cache/clipper}/images, keyed
# by the release, the package list and this script; a lock keeps two concurrent
# runs from both building. Prints the tarball's path on stdout (progress on stderr).
#
#   scripts/debian-base.sh                 # the release of /etc/os-release
#   DEBIAN_RELEASE=bookworm DEBIAN_MIRROR=http://deb.debian.org/debian scripts/debian-base.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
release="${DEBIAN_RELEASE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="ca-certificates,python3,python3-venv"

cache_root="${CLIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clipper}"
key="$(printf '%s\n%s\n' "$release" "$packages" | cat - "$here/debian-base.sh" | sha256sum | cut -c1-12)"
tarball="$cache_root/images/debian-$release-$key.tar"

if [[ -s "$tarball" ]]; then
    echo "debian base: cached in $tarball" >&2
    echo "$tarball"
    exit 0
fi

mkdir -p "$cache_root/images"
exec 9>"$cache_root/images/base.lock"
flock 9
if [[ -s "$tarball" ]]; then # another run built it while we waited for the lock
    echo "$tarball"
    exit 0
fi

command -v debootstrap >/dev/null || {
    echo "debian-base: 'debootstrap' not found (apt-get install debootstrap)" >&2
    exit 1
}

rootfs="$(mktemp -d "$cache_root/images/rootfs.XXXXXX")"
trap 'rm -rf "$rootfs" "$tarball.partial"' EXIT
echo "debian base: debootstrap $release ($packages) from $mirror" >&2
debootstrap --variant=minbase --include="$packages" "$release" "$rootfs" "$mirror" >&2

# What an image never needs at run time: package caches and lists, documentation,
# man pages, translations. apt and dpkg stay, so a derived image can still add a
# package (with a network) the Debian way.
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/tmp/* "$rootfs"/root/.cache
# Reproducible: sorted names, fixed owners, one modification time.
tar --sort=name --numeric-owner --mtime='2020-01-01 00:00:00Z' \
    -C "$rootfs" -cf "$tarball.partial" .
mv "$tarball.partial" "$tarball"
echo "debian base: built $tarball ($(du -h "$tarball" | cut -f1))" >&2
echo "$tarball"
