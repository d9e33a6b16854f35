#!/usr/bin/env bash
# Install Inlayer for this user and start it: a virtual environment of its own, PyTorch (a CUDA
# build where an NVIDIA GPU is found, the CPU build otherwise), Inlayer from this folder, the
# plug-ins into every GIMP 3 profile and Krita resource folder found, then the server in the
# background. Non-interactive; safe to run again (it updates what is there).
#
#   ./install.sh [--no-start]
#
# Environment:
#   INLAYER_HOME           where the virtual environment, models and log go
#                          (default ~/.local/share/inlayer; macOS ~/Library/Application Support/inlayer)
#   INLAYER_TORCH          cpu | cuda | a pip requirement, e.g. "torch==2.5.1" (default: detect)
#   INLAYER_TORCH_VERSION  the torch version of the cpu/cuda choices (default 2.13.0)
#   INLAYER_TORCH_CPU_INDEX  package index of CPU-only torch builds on Linux
#                          (default https://download.pytorch.org/whl/cpu; empty: only pip's own)
#   INLAYER_NO_START=1     same as --no-start: install, but do not start the server (CI)
#   PYTHON                 the Python to build the environment with (default python3, >= 3.10)
set -euo pipefail

SOURCE_DIR="$(cd "$(dirname "$0")" && pwd)"
NO_START="${INLAYER_NO_START:-0}"
for arg in "$@"; do
  case "$arg" in
    --no-start) NO_START=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install.sh: unknown option $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

say() { printf '\n==> %s\n' "$*"; }
fail() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

if [ -z "${INLAYER_HOME:-}" ]; then
  if [ "$(uname -s)" = "Darwin" ]; then
    INLAYER_HOME="$HOME/Library/Application Support/inlayer"
  else
    INLAYER_HOME="${XDG_DATA_HOME:-$HOME/.local/share}/inlayer"
  fi
fi
export INLAYER_HOME
VENV="$INLAYER_HOME/venv"

# --- Python -------------------------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 ||
  fail "$PYTHON not found. Install Python 3.10 or newer (https://www.python.org/downloads/) or set PYTHON=/path/to/python3."
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  fail "Inlayer needs Python 3.10 or newer; $PYTHON is $("$PYTHON" -c 'import platform; print(platform.python_version())'). Install a newer one and run PYTHON=/path/to/python3.12 ./install.sh"
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "Creating the virtual environment $VENV"
  mkdir -p "$INLAYER_HOME"
  "$PYTHON" -m venv "$VENV" ||
    fail "could not create a virtual environment. On Debian/Ubuntu: sudo apt install python3-venv"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

# --- PyTorch ------------------------------------------------------------------------------------
TORCH_VERSION="${INLAYER_TORCH_VERSION:-2.13.0}"
choice="${INLAYER_TORCH:-}"
if [ -z "$choice" ]; then
  if "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    choice=installed
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    choice=cuda
  else
    choice=cpu
  fi
fi
case "$choice" in
  installed)
    say "PyTorch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') is already installed (INLAYER_TORCH=cpu|cuda|SPEC replaces it)"
    ;;
  cuda)
    # PyPI's Linux wheels of torch are the CUDA builds.
    say "NVIDIA GPU found: installing PyTorch $TORCH_VERSION with CUDA (a large download)"
    "${PIP[@]}" "torch==$TORCH_VERSION"
    ;;
  cpu)
    say "No NVIDIA GPU found: installing the CPU build of PyTorch $TORCH_VERSION"
    cpu_index="${INLAYER_TORCH_CPU_INDEX-https://download.pytorch.org/whl/cpu}"
    if [ "$(uname -s)" = "Linux" ] && [ -n "$cpu_index" ]; then
      "${PIP[@]}" "torch==$TORCH_VERSION" --extra-index-url "$cpu_index"
    else
      "${PIP[@]}" "torch==$TORCH_VERSION"
    fi
    ;;
  *)
    say "Installing PyTorch as requested: $choice"
    # Word splitting is intended: the value may hold pip options such as --index-url URL.
    # shellcheck disable=SC2086
    "${PIP[@]}" $choice
    ;;
esac

# --- Inlayer ------------------------------------------------------------------------------------
say "Installing Inlayer from $SOURCE_DIR"
"${PIP[@]}" "$SOURCE_DIR"
INLAYER="$VENV/bin/inlayer"

say "Settings"
"$INLAYER" config --init

say "Installing the plug-ins into GIMP and Krita"
"$INLAYER" install-plugins

# --- the fast preset's small pieces on a machine without a CUDA GPU ------------------------------
# On a CPU an edit with the defaults takes minutes; with a tiny autoencoder and LCM-LoRA it takes
# seconds (the `fast` preset). Both are small (about 150 MB); without the network, say how to get
# them later.
if [ "$choice" != "cuda" ] && ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  say "No CUDA GPU: fetching the fast preset's pieces for SD 1.5 (TAESD and LCM-LoRA, about 150 MB)"
  if "$INLAYER" models pull taesd && "$INLAYER" models pull lcm-lora-sd15; then
    echo "Edits on this CPU use the fast preset (a few seconds instead of minutes)."
  else
    echo "Could not download them now (no network?). Later: $INLAYER models pull taesd; $INLAYER models pull lcm-lora-sd15"
  fi
fi

# --- the server ---------------------------------------------------------------------------------
LOG="$INLAYER_HOME/server.log"
PID_FILE="$INLAYER_HOME/server.pid"
if [ "$NO_START" = "1" ]; then
  say "Installed; not starting the server (--no-start). Start it with: $INLAYER serve"
  exit 0
fi
if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  say "Restarting the running Inlayer server (pid $(cat "$PID_FILE")) to use the new version"
  kill "$(cat "$PID_FILE")"
  for _ in $(seq 50); do kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break; sleep 0.2; done
fi
# A server this script did not start (`inlayer serve` in a terminal) is left alone.
running="$("$VENV/bin/python" - <<'PY'
import json, os
from inlayer.core.client.paths import server_info_path
try:
    info = json.loads(server_info_path().read_text())
    os.kill(info["pid"], 0)
    print(f"{info['url']} (pid {info['pid']})")
except (OSError, ValueError, KeyError, TypeError):
    pass
PY
)"
if [ -n "$running" ]; then
  say "An Inlayer server is already running at $running; restart it to use the new version"
  exit 0
fi
say "Starting the Inlayer server in the background (log: $LOG)"
nohup "$INLAYER" serve >"$LOG" 2>&1 &
echo $! >"$PID_FILE"
for _ in $(seq 100); do
  grep -q "Inlayer serves at" "$LOG" 2>/dev/null && break
  kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break
  sleep 0.2
done
if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  tail -n 20 "$LOG" >&2
  fail "the server stopped right after starting (log above, in $LOG)"
fi
cat <<EOF

Inlayer is running: $(grep -o 'Inlayer serves at [^ ]*' "$LOG" || echo "starting, see $LOG")
  Log:           $LOG
  Stop it:       kill \$(cat "$PID_FILE")
  Start again:   "$INLAYER" serve
  The command:   "$INLAYER" (or add "$VENV/bin" to your PATH)
  Models:        "$INLAYER" models pull sd15-inpainting   (fill works without any)
Open an image in GIMP (Filters > Inlayer) or Krita (Settings > Dockers > Inlayer).
EOF
