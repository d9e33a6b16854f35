"""Make the README's before/after picture with the weight-free fill (no model needed).

    python docs/images/make_fill_example.py

Draws a small landscape with power lines and a sign across it, masks them, runs
`inlayer run fill` on it and writes `fill-before-after.png` beside this file: the input with the
mask outlined in red on the left, the result on the right.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 384, 256
HORIZON = 150


def landscape() -> Image.Image:
    """Sky gradient, sun, hills and a field: smooth areas the fill can continue."""
    rows = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    sky = (1 - rows) * np.array([70, 130, 210]) + rows * np.array([250, 200, 150])
    pixels = np.repeat(sky, WIDTH, axis=1).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((270, 40, 320, 90), fill=(255, 236, 170))
    draw.polygon([(0, 170), (90, 115), (200, 160), (300, 120), (384, 150), (384, 256), (0, 256)],
                 fill=(86, 120, 80))  # fmt: skip
    draw.rectangle((0, 190, WIDTH, HEIGHT), fill=(120, 150, 70))
    return image.filter(ImageFilter.GaussianBlur(1.5))


def unwanted(draw: ImageDraw.ImageDraw, color: int | tuple[int, int, int]) -> None:
    """What the mask removes: two power lines sagging across the sky and a sign in the field."""
    for offset in (0, 14):
        points = [(x, 70 + offset - 0.0009 * (x - 190) ** 2) for x in range(0, WIDTH, 4)]
        draw.line(points, fill=color, width=3)
    draw.rectangle((96, 176, 136, 204), fill=color)
    draw.rectangle((113, 204, 119, 236), fill=color)


def main() -> int:
    scene = landscape()
    unwanted(ImageDraw.Draw(scene), (40, 36, 34))
    mask = Image.new("L", scene.size, 0)
    unwanted(ImageDraw.Draw(mask), 255)
    mask = mask.filter(ImageFilter.MaxFilter(3))  # cover the anti-aliased edges too

    with tempfile.TemporaryDirectory() as scratch:
        before, mask_path, after = (Path(scratch) / name for name in ("in.png", "m.png", "o.png"))
        scene.save(before)
        mask.save(mask_path)
        # Thin lines want a small grow and feather: a wide soft edge would repaint sky around them.
        command = [sys.executable, "-m", "inlayer.core.cli", "run", "fill", "--image", str(before),
                   "--mask", str(mask_path), "--out", str(after),
                   "--fill", "telea", "--grow", "1", "--feather", "3"]  # fmt: skip
        subprocess.run(command, check=True, cwd=HERE.parent.parent)
        result = Image.open(after).convert("RGB")

    outlined = scene.copy()
    edge = mask.filter(ImageFilter.FIND_EDGES).point(lambda value: 255 if value else 0)
    outlined.paste((230, 30, 30), mask=edge)
    picture = Image.new("RGB", (WIDTH * 2 + 8, HEIGHT), (255, 255, 255))
    picture.paste(outlined, (0, 0))
    picture.paste(result, (WIDTH + 8, 0))
    picture.save(HERE / "fill-before-after.png", optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
