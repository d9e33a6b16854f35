"""Rectangles and sizes, and where the model's context goes around a selection.

Standard library only: the GIMP and Krita plug-ins carry this module to decide which part of a
layer to read (`read_bounds`), and the engine uses the same code to decide what the model sees
(`context_bounds`), so the two always agree.

Words (the same as in ``protocol.py``):

- **Canvas**: the input image of a request, in its own pixel coordinates; its size is an `Extent`.
- **Mask bounds**: the rectangle around the grown and feathered mask; pixels outside it are never
  changed, and a result image covers exactly this rectangle.
- **Context bounds**: the larger rectangle around the mask bounds that the model sees, so that
  what it paints fits the surroundings. It grows with the strength (repainting from noise needs
  more surroundings than a light touch-up) and with the size of the mask.
- **Working extent**: the size the model runs at; the context is scaled to it and back.

Rectangles are half-open: a `Bounds` covers columns ``x … x + width - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The padding around the mask bounds, as krita-ai-diffusion found works well: a part that grows
# with the strength (at least CONTEXT_PADDING_MIN px at full strength) and a fixed share of the
# mask's diagonal, so that even light edits see a little of the surroundings.
CONTEXT_PADDING_MIN = 32
CONTEXT_PADDING_STRENGTH_SHARE = 0.1
CONTEXT_PADDING_FIXED_SHARE = 0.06

# What plug-ins read covers the context for every VAE scale factor (1, 2, 4, 8 … 64) and every
# model's native side (512 for SD 1.5-class, 1024 for SDXL-class models), whichever runs.
READ_MULTIPLE = 64
READ_MIN_SIZE = 1024


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is ≥ `value`."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Extent:
    """A size in pixels."""

    width: int
    height: int

    @property
    def pixel_count(self) -> int:
        return self.width * self.height

    @property
    def diagonal(self) -> float:
        return math.hypot(self.width, self.height)

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def multiple_of(self, multiple: int) -> Extent:
        """Both sides rounded up to multiples of `multiple`."""
        return Extent(round_up(self.width, multiple), round_up(self.height, multiple))

    def at_least(self, side: int) -> Extent:
        """Both sides raised to at least `side`."""
        return Extent(max(self.width, side), max(self.height, side))

    def scale_keep_aspect(self, target_pixels: int, multiple: int) -> Extent:
        """About `target_pixels` pixels with this aspect ratio, sides multiples of `multiple`.

        Scales up or down to the target; sides are rounded to the nearest multiple, never below
        one (a sliver then gets the pixel budget along its length). A size already a multiple
        and at the target comes back unchanged.
        """
        if self.is_empty:
            raise ValueError(f"cannot scale the empty size {self.width}x{self.height}")
        if target_pixels < 1 or multiple < 1:
            raise ValueError(f"target_pixels {target_pixels} and multiple {multiple} must be ≥ 1")
        scale = math.sqrt(target_pixels / self.pixel_count)

        def side(length: float) -> int:
            return max(multiple, round(length / multiple) * multiple)

        # Rounding the short side first and giving the long side the rest of the pixel budget
        # keeps the size near the target, slivers included.
        if self.width <= self.height:
            width = side(self.width * scale)
            return Extent(width, side(target_pixels / width))
        height = side(self.height * scale)
        return Extent(side(target_pixels / height), height)


@dataclass(frozen=True)
class Bounds:
    """A rectangle in pixels: top-left corner (x, y) and size. Empty when a side is ≤ 0."""

    x: int
    y: int
    width: int
    height: int

    @staticmethod
    def of(extent: Extent) -> Bounds:
        """The whole of an image of that size."""
        return Bounds(0, 0, extent.width, extent.height)

    @property
    def right(self) -> int:
        """One past the last column."""
        return self.x + self.width

    @property
    def bottom(self) -> int:
        """One past the last row."""
        return self.y + self.height

    @property
    def extent(self) -> Extent:
        return Extent(self.width, self.height)

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices: ``array[bounds.slices]`` is the rectangle of an HxW(xC) array."""
        return slice(self.y, self.bottom), slice(self.x, self.right)

    def offset(self, dx: int, dy: int) -> Bounds:
        return Bounds(self.x + dx, self.y + dy, self.width, self.height)

    def relative_to(self, origin: Bounds) -> Bounds:
        """This rectangle in the coordinates of `origin` (whose corner becomes 0, 0)."""
        return self.offset(-origin.x, -origin.y)

    def pad(self, px: int) -> Bounds:
        """Grown by `px` on every side (shrunk when negative)."""
        return Bounds(self.x - px, self.y - px, self.width + 2 * px, self.height + 2 * px)

    def intersection(self, other: Bounds) -> Bounds:
        """The common part; empty (size 0) when they do not overlap."""
        x, y = max(self.x, other.x), max(self.y, other.y)
        right, bottom = min(self.right, other.right), min(self.bottom, other.bottom)
        return Bounds(x, y, max(0, right - x), max(0, bottom - y))

    def clamp(self, canvas: Extent) -> Bounds:
        """The part inside a canvas of that size."""
        return self.intersection(Bounds.of(canvas))

    def union(self, other: Bounds) -> Bounds:
        """The smallest rectangle holding both; an empty one adds nothing."""
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        x, y = min(self.x, other.x), min(self.y, other.y)
        right, bottom = max(self.right, other.right), max(self.bottom, other.bottom)
        return Bounds(x, y, right - x, bottom - y)

    def contains(self, other: Bounds) -> bool:
        """Whether `other` lies inside (an empty rectangle lies inside anything)."""
        if other.is_empty:
            return True
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )


def context_padding(mask_bounds: Bounds, strength: float) -> int:
    """Pixels added on each side of the mask bounds for the model to see."""
    diagonal = mask_bounds.extent.diagonal
    strength_part = max(CONTEXT_PADDING_MIN, CONTEXT_PADDING_STRENGTH_SHARE * diagonal)
    return math.ceil(strength * strength_part + CONTEXT_PADDING_FIXED_SHARE * diagonal)


def _context_span(
    start: int, length: int, canvas_length: int, *, padding: int, min_side: int, multiple: int
) -> tuple[int, int]:
    """One axis of the context (start, length): the mask span padded, at least `min_side`,
    rounded up to `multiple`, centred on the mask span and moved inside the canvas rather than
    cut off; the whole canvas side when that does not fit."""
    want = round_up(max(length + 2 * padding, min_side), multiple)
    if want >= canvas_length:
        return 0, canvas_length
    centred = start - (want - length) // 2
    return min(max(centred, 0), canvas_length - want), want


def context_bounds(
    mask_bounds: Bounds,
    canvas: Extent,
    *,
    strength: float = 1.0,
    min_size: int = 512,
    multiple: int = 8,
) -> Bounds:
    """The context bounds around `mask_bounds` on a canvas of size `canvas`.

    The mask bounds padded by `context_padding`; each side at least ``min_size · strength``
    (a small selection repainted from noise needs surroundings to match) where the canvas
    allows; sides rounded up to multiples of `multiple` (the model's VAE factor) where the canvas
    allows, else the whole canvas side; moved inside the canvas rather than cut where it would
    stick out. Always contains the mask bounds (clamped to the canvas). Empty mask bounds mean
    "no mask": the whole canvas.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be ≥ 1, not {multiple}")
    mask_bounds = mask_bounds.clamp(canvas)
    if mask_bounds.is_empty:
        return Bounds.of(canvas)
    sizing = {
        "padding": context_padding(mask_bounds, strength),
        "min_side": round(min_size * strength),
        "multiple": multiple,
    }
    x, width = _context_span(mask_bounds.x, mask_bounds.width, canvas.width, **sizing)
    y, height = _context_span(mask_bounds.y, mask_bounds.height, canvas.height, **sizing)
    return Bounds(x, y, width, height)


def _read_span(
    start: int, length: int, layer_length: int, *, padding: int, min_side: int
) -> tuple[int, int]:
    """One axis of `read_bounds` (start, length): everywhere `_context_span` can put the context
    of any part of the mask span, for every multiple up to `READ_MULTIPLE`."""
    # The widest context and how far a centred one reaches past the mask span.
    widest = round_up(max(length + 2 * padding, min_side), READ_MULTIPLE)
    reach = -(-(max(2 * padding, min_side - 1) + READ_MULTIPLE - 1) // 2)
    low, high = start - reach, start + length + reach
    # A context that would cross the layer's edge is moved inside it, up to its full width.
    if low <= 0:
        high = max(high, widest)
    if high >= layer_length:
        low = min(low, layer_length - widest)
    low, high = max(low, 0), min(high, layer_length)
    return low, high - low


def read_bounds(
    selection_bounds: Bounds,
    layer: Bounds,
    *,
    grow: int,
    feather: int,
    strength: float,
    min_size: int = READ_MIN_SIZE,
) -> Bounds:
    """The part of a layer a plug-in reads and sends, in layer-local coordinates.

    `selection_bounds` and `layer` (the layer's offsets and size) are in image coordinates. The
    rectangle holds every context the engine can pick for this selection, whatever the model's
    VAE factor (up to `READ_MULTIPLE`) and native side (up to `min_size`), and however far grey
    edges or shrinking make the mask bounds smaller than the selection's; so sending only it
    gives the same context, and the same result, as sending the whole layer. Empty when the
    selection misses the layer.
    """
    layer_extent = layer.extent
    selection = selection_bounds.relative_to(layer)
    # The largest mask bounds the engine can find: growing and feathering widen the selection,
    # shrinking only narrows it.
    mask_bounds = selection.pad(max(grow, 0) + feather).clamp(layer_extent)
    if mask_bounds.is_empty:
        return mask_bounds
    # The engine's mask bounds lie inside these; their padding is at most this one.
    sizing = {
        "padding": context_padding(mask_bounds, strength),
        "min_side": round(min_size * strength),
    }
    x, width = _read_span(mask_bounds.x, mask_bounds.width, layer_extent.width, **sizing)
    y, height = _read_span(mask_bounds.y, mask_bounds.height, layer_extent.height, **sizing)
    return Bounds(x, y, width, height)
