#!/usr/bin/env bash
# Build (once) and print the path of a Debian chroot holding real GIMP 3 and Krita.
#
#   build_chroot.sh [trixie|sid]
#
#   trixie (default)  Debian 13: GIMP 3.0.4, Krita 5.2.9 (PyQt5)
#   sid               Debian sid with experimental's Krita: GIMP 3.2.6, Krita 6.0.4 (PyQt6)
#
# The host's Debian ships GIMP 2.10 and Krita 5.1, which cannot run Inlayer's plug-ins, so the
# end-to-end tests run the editors inside a chroot. Each is cached under the user's cache folder,
# keyed by its RECIPE: change the recipe whenever its package list changes.
# Needs root (debootstrap, chroot, mount). Prints the chroot's path on the last line of stdout.
set -euo pipefail

GENERATION="${1:-trixie}"
case "$GENERATION" in
  trixie) RECIPE="trixie-gimp3-krita52-v1" ;;
  sid) RECIPE="sid-gimp32-krita6-v1" ;;
  *) echo "build_chroot.sh: unknown generation '$GENERATION' (trixie or sid)" >&2; exit 2 ;;
esac
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
debootstrap --variant=minbase "$GENERATION" "$ROOT" "$MIRROR" >&2

cleanup() { umount "$ROOT/proc" 2>/dev/null || true; }
trap cleanup EXIT
mount -t proc proc "$ROOT/proc"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
install_packages() {
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "$@" >&2
}
if [ "$GENERATION" = "trixie" ]; then
  chroot "$ROOT" apt-get update -qq >&2
  install_packages gimp python3 python3-gi gir1.2-gimp-3.0 krita python3-pyqt5 xvfb xauth
else
  # Krita 6 is in experimental, whose Release file is served past its validity date.
  echo "deb $MIRROR experimental main" > "$ROOT/etc/apt/sources.list.d/experimental.list"
  echo 'Acquire::Check-Valid-Until "false";' > "$ROOT/etc/apt/apt.conf.d/99inlayer-experimental"
  chroot "$ROOT" apt-get update -qq >&2
  install_packages gimp python3 python3-gi gir1.2-gimp-3.0 xvfb xauth python3-pyqt6 \
    fonts-dejavu-core
  install_packages -t experimental krita
fi
chroot "$ROOT" apt-get clean >&2
touch "$ROOT/.inlayer-ready"
echo "$ROOT"
