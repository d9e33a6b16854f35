#!/usr/bin/env bash
# Build (once) and print the path of a Debian 13 chroot holding real GIMP 3 and Krita 5.2.
#
# The host's Debian ships GIMP 2.10 and Krita 5.1, which cannot run Inlayer's plug-ins, so the
# end-to-end tests run the editors from Debian 13 inside a chroot. It is cached under the user's
# cache folder, keyed by RECIPE: change RECIPE whenever the package list changes.
# Needs root (debootstrap, chroot, mount). Prints the chroot's path on the last line of stdout.
set -euo pipefail

RECIPE="trixie-gimp3-krita52-v1"
CACHE_ROOT="${INLAYER_CHROOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inlayer/chroot}"
ROOT="$CACHE_ROOT/$RECIPE"
MIRROR="${INLAYER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ -f "$ROOT/.inlayer-ready" ]; then
  echo "$ROOT"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
fi

rm -rf "$ROOT"
mkdir -p "$CACHE_ROOT"
debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >&2

cleanup() { umount "$ROOT/proc" 2>/dev/null || true; }
trap cleanup EXIT
mount -t proc proc "$ROOT/proc"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
chroot "$ROOT" apt-get update -qq >&2
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  gimp python3 python3-gi gir1.2-gimp-3.0 \
  krita python3-pyqt5 xvfb xauth >&2
chroot "$ROOT" apt-get clean >&2
touch "$ROOT/.inlayer-ready"
echo "$ROOT"
