"""The options of `inlayer run` that guide an edit: ControlNets (`--control MODEL=IMAGE[:WEIGHT]`,
repeatable, each followed by an optional `--control-preprocess`), an instruction edit's
`--image-guidance`, and a style reference (`--style-image FILE[:SCALE]`).

`core/cli.py` adds them to its parser (`add_guided_arguments`) and turns them into request
fields (`guided_fields`), reading the image files with its own reader.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client.protocol import (
    CONTROL_PREPROCESSORS,
    ControlChoice,
    EditRequest,
    RGBAImage,
    StyleChoice,
)
from .command_line import CommandError

DEFAULT_IMAGE_GUIDANCE = EditRequest.image_guidance


@dataclass
class ControlOption:
    """One `--control` as typed, with the `--control-preprocess` that followed it."""

    model: str
    image: Path
    weight: float = 1.0
    preprocessor: str = "none"

    @staticmethod
    def parse(text: str) -> ControlOption:
        """``MODEL=IMAGE[:WEIGHT]``; a colon followed by no number belongs to the path."""
        model, equals, rest = text.partition("=")
        if not equals or not model.strip() or not rest.strip():
            raise argparse.ArgumentTypeError(f"{text!r} is not MODEL=IMAGE[:WEIGHT]")
        path, colon, tail = rest.rpartition(":")
        if colon and path:
            try:
                return ControlOption(model.strip(), Path(path), float(tail))
            except ValueError:
                pass
        return ControlOption(model.strip(), Path(rest))


class _AppendControl(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        namespace.controls = [*(namespace.controls or []), values]


class _PreprocessLastControl(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if not namespace.controls:
            parser.error("--control-preprocess applies to the --control before it; give one")
        namespace.controls[-1].preprocessor = values


def parse_style_option(text: str) -> tuple[Path, float]:
    """``FILE[:SCALE]``; a colon followed by no number belongs to the path."""
    path, colon, tail = text.rpartition(":")
    if colon and path:
        try:
            return Path(path), float(tail)
        except ValueError:
            pass
    return Path(text), StyleChoice.scale


def add_guided_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--style-image",
        type=parse_style_option,
        metavar="FILE[:SCALE]",
        help="a style reference carried into the picture by an IP-Adapter (from an ipadapter/ "
        f"folder, with its image encoder in clip_vision/), at SCALE (default {StyleChoice.scale})",
    )
    parser.add_argument(
        "--image-guidance",
        type=float,
        default=DEFAULT_IMAGE_GUIDANCE,
        help="edit: how closely the result keeps to the image (1 = off; default "
        f"{DEFAULT_IMAGE_GUIDANCE:g}; raise it when the edit changes too much)",
    )
    parser.add_argument(
        "--control",
        dest="controls",
        action=_AppendControl,
        type=ControlOption.parse,
        default=[],
        metavar="MODEL=IMAGE[:WEIGHT]",
        help="a ControlNet (from a controlnet/ folder, or a path) guided by an image the size "
        "of the canvas, with its weight (default 1); repeatable (txt2img, img2img, inpaint)",
    )
    parser.add_argument(
        "--control-preprocess",
        action=_PreprocessLastControl,
        choices=CONTROL_PREPROCESSORS,
        help="how the last --control's image becomes its map: none (it is one: white lines on "
        "black), canny, scribble or lineart (from a drawing), depth, softedge",
    )


def guided_fields(
    args: argparse.Namespace, read_image: Callable[[Path, str], RGBAImage]
) -> dict[str, Any]:
    """The request fields of the guide options (`read_image(path, option)` reads a file)."""
    controls: Sequence[ControlOption] = args.controls
    if controls and args.mode not in ("txt2img", "img2img", "inpaint"):
        raise CommandError(f"--control: {args.mode} takes no ControlNet")
    style = None
    if args.style_image is not None:
        path, scale = args.style_image
        style = StyleChoice(read_image(path, "style-image"), scale)
    return {
        "style": style,
        "image_guidance": args.image_guidance,
        "controls": tuple(
            ControlChoice(
                control.model,
                read_image(control.image, "control"),
                preprocessor=control.preprocessor,
                weight=control.weight,
            )
            for control in controls
        ),
    }
