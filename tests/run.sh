#!/usr/bin/env bash
# Run Inlayer's whole test suite on a fresh machine: sets up .venv (CPU torch unless one is there),
# builds the cached Debian 13 chroot with real GIMP 3 / Krita 5.2 when running as root, then pytest.
# Extra arguments go to pytest. INLAYER_SKIP_EDITORS=1 skips the real-editor tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q "torch==${INLAYER_TORCH_VERSION:-2.13.0}"
fi
.venv/bin/pip install -q -e ".[dev]"

if [ "${INLAYER_SKIP_EDITORS:-0}" != "1" ] && [ "$(id -u)" = "0" ]; then
  INLAYER_CHROOT="$(bash tests/editors/build_chroot.sh | tail -n 1)"
  export INLAYER_CHROOT
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
