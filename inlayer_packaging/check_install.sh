#!/usr/bin/env bash
# Check the README's install command on this clone as a fresh machine runs it: a scratch home
# folder holding GIMP 3.0 and 3.2 profiles and a Krita resource folder, `./install.sh` run
# non-interactively (server started on a free port), then what it promises: the plug-ins in every
# profile, the `inlayer` command, the weight-free fill, and the server answering the client the
# plug-ins carry. Leaves nothing behind. Extra environment (INLAYER_TORCH, ...) goes to install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch="$(mktemp -d)"
export HOME="$scratch/home" INLAYER_HOME="$scratch/inlayer" INLAYER_PORT=0
unset XDG_CONFIG_HOME XDG_DATA_HOME INLAYER_CONFIG_DIR GIMP3_DIRECTORY
stop_server() {
  if [ -f "$INLAYER_HOME/server.pid" ]; then
    kill "$(cat "$INLAYER_HOME/server.pid")" 2>/dev/null || true
  fi
}
trap 'stop_server; rm -rf "$scratch"' EXIT
mkdir -p "$HOME/.config/GIMP/3.0" "$HOME/.config/GIMP/3.2" "$HOME/.local/share/krita"

./install.sh </dev/null

inlayer="$INLAYER_HOME/venv/bin/inlayer"
python="$INLAYER_HOME/venv/bin/python"
check() {
  if ! "$@"; then
    echo "check_install: failed: $*" >&2
    exit 1
  fi
}
for version in 3.0 3.2; do
  check test -x "$HOME/.config/GIMP/$version/plug-ins/inlayer/inlayer.py"
  check test -f "$HOME/.config/GIMP/$version/plug-ins/inlayer/inlayer_client/http_client.py"
done
check test -f "$HOME/.local/share/krita/pykrita/inlayer_krita.desktop"
check test -f "$HOME/.local/share/krita/pykrita/inlayer_krita/inlayer_client/http_client.py"
check grep -qx "enable_inlayer_krita=true" "$HOME/.config/kritarc"
check test -f "$HOME/.config/inlayer/config.ini"
# Running it again changes nothing.
again="$("$inlayer" install-plugins)"
if [ "$(grep -cv "already up to date" <<<"$again")" != "0" ]; then
  echo "check_install: a second install-plugins changed something:" >&2
  echo "$again" >&2
  exit 1
fi

# The weight-free fill works with nothing downloaded.
"$python" - "$scratch" <<'PY'
import sys
from pathlib import Path
from PIL import Image, ImageDraw

folder = Path(sys.argv[1])
image = Image.new("RGB", (96, 64), (40, 120, 200))
ImageDraw.Draw(image).rectangle((40, 20, 56, 44), fill=(0, 0, 0))
image.save(folder / "in.png")
mask = Image.new("L", image.size, 0)
ImageDraw.Draw(mask).rectangle((38, 18, 58, 46), fill=255)
mask.save(folder / "mask.png")
PY
"$inlayer" run fill --image "$scratch/in.png" --mask "$scratch/mask.png" --out "$scratch/out.png"
"$python" - "$scratch" <<'PY'
import sys
from pathlib import Path
from PIL import Image

red, green, blue = Image.open(Path(sys.argv[1]) / "out.png").convert("RGB").getpixel((48, 32))
assert blue > 150 and red < 90, f"the filled hole is not sky-coloured: {(red, green, blue)}"
PY

# The server install.sh started answers the plug-ins' client (it finds it through server.json).
"$python" -c 'from inlayer.core.client.http_client import HttpClient; print("server:", HttpClient().health())'
echo "check_install: the install command works"
