#!/usr/bin/env bash
# Run Inlayer's whole test suite on a fresh machine: sets up .venv (CPU torch unless one is there),
# builds the two cached Debian chroots with real editors when running as root (trixie: GIMP 3.0 and
# Krita 5.2; sid: GIMP 3.2 and Krita 6.0), then runs pytest once: every editor test runs in each
# chroot, its id naming the editor versions. Extra arguments go to pytest.
# INLAYER_SKIP_EDITORS=1 skips the real-editor tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch and torchvision (which spandrel needs) must be builds of one release; PyPI's
# torchvision does not import beside a CPU-index torch, so both come from one place.
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  .venv/bin/pip install -q "torch==${INLAYER_TORCH_VERSION:-2.14.1}" \
    "torchvision==${INLAYER_TORCHVISION_VERSION:-0.29.1}"
fi
.venv/bin/pip install -q -e ".[dev]"

if [ "${INLAYER_SKIP_EDITORS:-0}" != "1" ] && [ "$(id -u)" = "0" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
  fi
  # Both chroots build at once (mostly downloads); each is cached after its first build.
  logs="$(mktemp -d)"
  for generation in trixie sid; do
    bash tests/editors/build_chroot.sh "$generation" >"$logs/$generation.out" 2>"$logs/$generation.err" &
    echo $! >"$logs/$generation.pid"
  done
  INLAYER_CHROOTS=""
  for generation in trixie sid; do
    if ! wait "$(cat "$logs/$generation.pid")"; then
      echo "building the $generation chroot failed:" >&2
      tail -n 40 "$logs/$generation.err" >&2
      exit 1
    fi
    INLAYER_CHROOTS="$INLAYER_CHROOTS $generation=$(tail -n 1 "$logs/$generation.out")"
  done
  rm -rf "$logs"
  export INLAYER_CHROOTS
fi

export HF_HUB_OFFLINE=1
# The server, the editors and pytest share the cores: one thread each avoids oversubscription,
# which slows the tiny models' many small operations tenfold.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests (for example a -k filter that matched nothing).
if [ "$status" = "5" ]; then
  echo "pytest collected no tests" >&2
  exit 0
fi
exit "$status"
