"""The `inlayer` command: `inlayer run …` edits image files, `inlayer models` lists models.

The server and the installer add their own subcommands (`inlayer serve`; `inlayer
install-plugins`, `inlayer config`, `inlayer models pull`) through their `register` functions.
Every bad input ends with exit code 2 and a one-line message, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from inlayer.packaging import cli as packaging_commands
from inlayer.server import cli as serve_command
from inlayer.server import user_tokens as token_command

from .client.protocol import (
    MAX_CLIP_SKIP,
    MAX_COUNT,
    MAX_PIXELS,
    REFINE_AUTO,
    REMOVER_FILL,
    SCHEDULERS,
    SEGMENTER_GRABCUT,
    VAE_FULL,
    VAE_TINY,
    EditRequest,
    EditResult,
    FillMode,
    InlayerError,
    InvalidRequest,
    LoraChoice,
    Mask,
    Mode,
    Preset,
    Progress,
    RGBAImage,
    default_strength,
)
from .command_line import CommandError, add_model_options, settings_from
from .guided_options import add_guided_arguments, guided_fields

if TYPE_CHECKING:
    from .models import ModelRegistry

EXIT_BAD_INPUT = 2


# --- reading and writing image files -----------------------------------------------------------


def read_image(path: Path, what: str = "image"):
    """A Pillow image of `path`, decoded only once its header shows a size Inlayer accepts."""
    from .images import open_image

    try:
        with path.open("rb") as file:
            return open_image(file, f"--{what}", MAX_PIXELS)
    except FileNotFoundError:
        raise CommandError(f"--{what}: {path} does not exist") from None
    except IsADirectoryError:
        raise CommandError(f"--{what}: {path} is a folder, not an image") from None
    except InvalidRequest as error:
        raise CommandError(f"{error.field}: {path} {error.message}") from None


def image_from_file(path: Path, what: str = "image") -> RGBAImage:
    """8-bit RGBA pixels of an image file (Pillow converts other depths and palettes)."""
    image = read_image(path, what).convert("RGBA")
    return RGBAImage(image.width, image.height, image.tobytes())


def mask_from_file(path: Path) -> Mask:
    """An 8-bit soft mask of an image file: white = repaint, black = keep, grey = blend."""
    mask = read_image(path, "mask").convert("L")
    return Mask(mask.width, mask.height, mask.tobytes())


def output_paths(out: Path, count: int) -> list[Path]:
    """OUT for one image; OUT-1, OUT-2 … (before the extension) for several."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, count + 1)]


def check_output(out: Path) -> None:
    from PIL import Image

    if out.suffix.lower() not in Image.registered_extensions():
        raise CommandError(f"--out: {out.suffix or 'no extension'} is not an image format")
    if not out.parent.is_dir():
        raise CommandError(f"--out: the folder {out.parent} does not exist")


# --- inlayer run ------------------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", choices=[mode.value for mode in Mode], help="what to do")
    parser.add_argument("--image", type=Path, help="input image (any format Pillow reads)")
    parser.add_argument(
        "--mask", type=Path, help="mask image the size of the input: white = repaint, grey = soft"
    )
    parser.add_argument("--out", type=Path, required=True, help="output image file")
    parser.add_argument("--prompt", default="", help="what to paint")
    parser.add_argument("--negative", default="", help="what to avoid")
    parser.add_argument("--model", default="", help="a listed name, a path or a HF repo id")
    add_model_options(parser, device=True, allow_pickle=True)
    parser.add_argument(
        "--strength",
        type=float,
        default=None,
        help=f"0-1 (default 1; img2img {default_strength(Mode.IMG2IMG)})",
    )
    parser.add_argument(
        "--preset",
        choices=[preset.value for preset in Preset],
        default="",
        help="quality (20 steps, guidance) or fast (a speed LoRA or distilled model, few steps, "
        "tiny autoencoder); default: fast on a CPU where its pieces are installed, else quality",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="denoising steps (default: the preset's)"
    )
    parser.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance; ≤ 1 is off and twice as fast (default: the preset's)",
    )
    parser.add_argument(
        "--lora",
        action="append",
        type=LoraChoice.parse,
        default=[],
        metavar="NAME_OR_PATH[:SCALE]",
        help="a LoRA from a loras/ folder or a .safetensors path, with its scale (default 1); "
        "repeatable",
    )
    parser.add_argument(
        "--vae",
        default="",
        metavar="NAME_OR_PATH",
        help=f"a tiny autoencoder (from a vae_approx/ folder, or a path), {VAE_TINY!r} for the "
        f"installed one, a full one from a vae/ folder in place of the model's own, or "
        f"{VAE_FULL!r} for the model's own (default: the preset's)",
    )
    parser.add_argument(
        "--timings",
        action="store_true",
        help="print the run's step timings (seconds) as one JSON object on the last line",
    )
    parser.add_argument(
        "--content-credentials",
        action="store_true",
        help="also sign each file with C2PA Content Credentials, Inlayer's self-signed ones "
        "(default: [output] content_credentials in config.ini); every file says it was made "
        "with AI either way",
    )
    parser.add_argument("--seed", type=int, default=-1, help="-1 = random")
    parser.add_argument(
        "--count", type=int, default=1,
        help=f"variations (1-{MAX_COUNT}); several are written as OUT-1, OUT-2 …",
    )  # fmt: skip
    parser.add_argument("--width", type=int, help="canvas width for txt2img without --image")
    parser.add_argument("--height", type=int, help="canvas height for txt2img without --image")
    parser.add_argument(
        "--grow", type=int, default=4, help="px to grow the mask (negative: shrink)"
    )
    parser.add_argument("--feather", type=int, default=8, help="px of soft mask edge")
    parser.add_argument("--fill", choices=[fill.value for fill in FillMode], default="auto")
    parser.add_argument("--scheduler", choices=sorted(SCHEDULERS), default="")
    parser.add_argument(
        "--clip-skip", type=int, default=1,
        help=f"read the prompt from this text encoder layer, counted from the last as "
        f"AUTOMATIC1111 counts it (1 = the last, 2 = the one before; 1-{MAX_CLIP_SKIP})",
    )  # fmt: skip
    parser.add_argument(
        "--noise-seed-delta", type=int, default=0,
        help="the noise ancestral and SDE samplers add at each step comes from seed + this "
        "(AUTOMATIC1111's eta_noise_seed_delta, e.g. 31337); 0 = from the seed's own generator",
    )  # fmt: skip
    parser.add_argument(
        "--refine",
        default=REFINE_AUTO,
        metavar="auto|off|STRENGTH",
        help="inpaint/img2img: refine a result larger than the model's size at full resolution "
        "in tiles (auto: when it is scaled up by about 1.2× a side or more); upscale and "
        "remove: the strength of a diffusion pass over the upscaled or removed area "
        "(default: none)",
    )
    parser.add_argument(
        "--tiling",
        action="store_true",
        help="txt2img/img2img of the whole image: a texture that tiles without seams",
    )
    parser.add_argument("--scale", type=int, default=2, help="upscale: by 2 or 4")
    parser.add_argument(
        "--upscaler",
        default="",
        help="upscale: a model from an upscale_models/ folder, a file, or Lanczos "
        "(default: the first installed model, else Lanczos)",
    )
    parser.add_argument(
        "--extend",
        default="",
        metavar="LEFT,TOP,RIGHT,BOTTOM",
        help="outpaint: px to add on each side",
    )
    parser.add_argument(
        "--aspect", default="", metavar="W:H", help="outpaint: grow the canvas to 16:9, 4:3, …"
    )
    add_restoration_arguments(parser)
    add_guided_arguments(parser)


def add_restoration_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of remove, restore and select, and the face restore after any mode."""
    parser.add_argument(
        "--remover",
        default="",
        metavar="NAME_OR_PATH",
        help=f"remove: a model from an inpaint/ folder (LaMa, MAT), or {REMOVER_FILL!r} for the "
        "weight-free fill (default: the first installed, else the fill)",
    )
    parser.add_argument(
        "--segmenter",
        default="",
        metavar="NAME_OR_PATH",
        help="select: a subject segmenter (IS-Net, BiRefNet) from a rembg/ folder, a Segment "
        f"Anything model from a sams/ folder, or {SEGMENTER_GRABCUT!r} for OpenCV's GrabCut "
        "(default: the first subject segmenter, else the first Segment Anything, else GrabCut)",
    )
    parser.add_argument(
        "--near",
        type=Path,
        metavar="MASK",
        help="select: look for the subject under this mask (white) rather than in the whole image",
    )
    faces_help = "from a facerestore_models/ folder (GFPGAN, RestoreFormer, CodeFormer); FIDELITY "
    faces_help += "0-1 keeps that much of the original face (CodeFormer's weight, default 0.5)"
    parser.add_argument(
        "--faces", default="", metavar="MODEL[:FIDELITY]", help=f"restore: faces, {faces_help}"
    )
    parser.add_argument(
        "--restore-faces",
        default="",
        metavar="MODEL[:FIDELITY]",
        help=f"txt2img, img2img, inpaint: restore the faces of the result, {faces_help}",
    )
    for option, what in (("denoise", "denoise or JPEG-artifact"), ("colorize", "colorization")):
        parser.add_argument(
            f"--{option}",
            default="",
            metavar="MODEL[:STRENGTH]",
            help=f"restore: a {what} model from an upscale_models/ folder, its picture blended "
            "over the input by STRENGTH (default 1)",
        )


def request_from_args(args: argparse.Namespace) -> EditRequest:
    mode = Mode(args.mode)
    if mode != Mode.TXT2IMG and args.image is None:
        raise CommandError(f"{mode.value} needs --image")
    if mode in (Mode.INPAINT, Mode.FILL, Mode.REMOVE) and args.mask is None:
        raise CommandError(f"{mode.value} needs --mask (white = the area to repaint)")
    if args.near is not None:
        if mode != Mode.SELECT or args.mask is not None:
            raise CommandError("--near is select's mask: give it to select, instead of --mask")
        args.mask = args.near
    if args.mask is not None and args.image is None:
        raise CommandError("--mask needs --image")
    strength = default_strength(mode) if args.strength is None else args.strength
    request = EditRequest(
        mode=mode,
        image=image_from_file(args.image) if args.image else None,
        mask=mask_from_file(args.mask) if args.mask else None,
        prompt=args.prompt,
        negative_prompt=args.negative,
        strength=strength,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
        count=args.count,
        scheduler=args.scheduler,
        model=args.model,
        preset=args.preset,
        loras=tuple(args.lora),
        vae=args.vae,
        fill=FillMode(args.fill),
        grow=args.grow,
        feather=args.feather,
        width=args.width,
        height=args.height,
        clip_skip=args.clip_skip,
        noise_seed_delta=args.noise_seed_delta,
        remover=args.remover,
        segmenter=args.segmenter,
        refine=args.refine,
        restore_faces=args.faces or args.restore_faces,
        denoise=args.denoise,
        colorize=args.colorize,
        tiling=args.tiling,
        scale=args.scale,
        upscaler=args.upscaler,
        extend=parse_extend(args.extend),
        aspect=args.aspect,
        **guided_fields(args, image_from_file),
    )
    request.validate()
    return request


def parse_extend(text: str) -> tuple[int, int, int, int]:
    """``LEFT,TOP,RIGHT,BOTTOM`` px (empty: nothing) as `EditRequest.extend` takes them."""
    if not text:
        return (0, 0, 0, 0)
    parts = text.split(",")
    try:
        left, top, right, bottom = (int(part) for part in parts)
    except ValueError:
        raise InvalidRequest(
            "extend", f"{text!r}: write 4 px counts LEFT,TOP,RIGHT,BOTTOM, e.g. 0,0,256,0"
        ) from None
    return (left, top, right, bottom)


def make_registry(args: argparse.Namespace) -> ModelRegistry:
    """The registry config.ini describes, with the command line's overrides."""
    return settings_from(args).model_registry()


class ProgressBar:
    """A tqdm bar on stderr fed by the engine's progress reports."""

    def __init__(self) -> None:
        self._bar = None

    def __call__(self, progress: Progress) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=progress.total, unit="step", file=sys.stderr, leave=False)
        self._bar.total = progress.total
        self._bar.update(progress.step - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def quiet_libraries() -> None:
    """Silence diffusers' and transformers' own loading bars and notices; Inlayer reports."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def run_command(args: argparse.Namespace) -> int:
    check_output(args.out)
    request = request_from_args(args)
    from .engine import Engine
    from .images import full_size_images, write_image_file
    from .settings import load_settings

    sign = args.content_credentials or load_settings().content_credentials

    if request.mode == Mode.FILL:
        from .models import ModelRegistry

        engine = Engine(ModelRegistry())  # fill needs no model, and no settings
    else:
        quiet_libraries()
        engine = Engine(make_registry(args))
    bar = ProgressBar()
    cancel = threading.Event()
    try:
        result = engine.run(request, on_progress=bar, cancel=cancel)
    finally:
        bar.close()
    paths = output_paths(args.out, len(result.images))
    if request.mode == Mode.SELECT:
        pictures = subject_masks(result)
    else:
        pictures = full_size_images(request, result)
    for pixels, path, generated in zip(pictures, paths, result.images, strict=True):
        write_image_file(pixels, path, result.parameters_of(generated), content_credentials=sign)
    for path, generated in zip(paths, result.images, strict=True):
        print(f"{path} (seed {generated.seed})")
    if not result.images:
        print("inlayer: nothing written", file=sys.stderr)
    if result.hint:
        print(f"inlayer: hint: {result.hint}", file=sys.stderr)
    if args.timings:
        print(json.dumps({step: round(seconds, 3) for step, seconds in result.timings.items()}))
    return 0


def subject_masks(result: EditResult) -> list:
    """A select result's masks (their layers' alpha), each as an opaque grey picture of the
    canvas, white where the subject is."""
    import numpy as np

    from .geometry import image_array

    masks = []
    for subject in result.images:
        mask = np.zeros((result.canvas_height, result.canvas_width), dtype=np.uint8)
        rows = slice(subject.y, subject.y + subject.image.height)
        mask[rows, subject.x : subject.x + subject.image.width] = image_array(subject.image)[..., 3]
        masks.append(np.dstack([mask, mask, mask, np.full_like(mask, 255)]))
    return masks


# --- inlayer inspect --------------------------------------------------------------------------


def inspect_command(args: argparse.Namespace) -> int:
    """What an image file says about where it came from: Inlayer's marks, anyone's IPTC
    digital source type in XMP, AUTOMATIC1111's generation data, C2PA Content Credentials."""
    from .content_credentials import CredentialsUnavailable, read_credentials
    from .images import open_image
    from .provenance import IPTC_TERMS, read_origin

    path: Path = args.file
    try:
        with path.open("rb") as file:
            open_image(file, "file")  # a clear error for a missing, broken or oversized file
        origin = read_origin(path)
    except FileNotFoundError:
        raise CommandError(f"{path} does not exist") from None
    except InvalidRequest as error:
        raise CommandError(f"{path}: {error.message}") from None
    rows = [
        ("Origin", origin.description),
        ("Digital source type (IPTC)", origin.digital_source_type or "none"),
        ("Created with", origin.creator_tool or "not stated"),
        ("AI system", origin.ai_system),
        ("Prompt", origin.prompt),
    ]
    try:
        credentials = read_credentials(path)
    except CredentialsUnavailable as error:
        rows.append(("Content Credentials", f"not checked: {error}"))
    else:
        if credentials is None:
            rows.append(("Content Credentials", "none"))
        else:
            actions = ", ".join(
                f"{action} ({kind.removeprefix(IPTC_TERMS)})"
                for action, kind in zip(
                    credentials.actions, credentials.digital_source_types, strict=True
                )
            )
            rows.append(
                (
                    "Content Credentials",
                    f"by {credentials.claim_generator}; {actions}; signature "
                    f"{credentials.validation} (signed by a self-signed issuer)",
                )
            )
    for label, value in rows:
        if value:
            print(f"{label}: {value}")
    if origin.parameters:
        print(f"Inlayer parameters: {json.dumps(origin.parameters, sort_keys=True)}")
    if origin.a1111_parameters:
        print("Generation data (AUTOMATIC1111):")
        print(origin.a1111_parameters)
    return 0


# --- inlayer models ---------------------------------------------------------------------------


def models_command(args: argparse.Namespace) -> int:
    registry = make_registry(args)
    models = registry.list()
    if not models:
        print_image_models(registry)
        folders = ", ".join(str(d) for d in registry.models_dirs) or "none"
        print(
            f"No models found (models folders: {folders}). Put a diffusers folder or a "
            ".safetensors checkpoint there; `inlayer run fill` works without any.",
            file=sys.stderr,
        )
        return 0
    rows = [("NAME", "FAMILY", "MODES", "FORMAT", "SOURCE")]
    rows += [(m.name, m.family, ",".join(m.modes), m.format, m.source) for m in models]
    print_table(rows)
    print_image_models(registry)
    add_ons = registry.add_ons()
    if add_ons:
        print()
        rows = [("NAME", "KIND", "FITS", "SPEED", "SOURCE")]
        rows += [(a.name, a.kind.value, a.family or "?", a.speed or "-", a.source) for a in add_ons]
        print_table(rows)
    return 0


def print_image_models(registry: ModelRegistry) -> None:
    """The files in the folders of the image models (no weights read), with what each does."""
    from .model_files import (
        FACE_DETECTORS,
        FACE_RESTORERS,
        OBJECT_REMOVERS,
        SEGMENTERS,
        SUBJECT_SEGMENTERS,
        UPSCALERS,
    )

    uses = (
        (OBJECT_REMOVERS, "object remover: remove (--remover)"),
        (FACE_RESTORERS, "face restorer: restore --faces, --restore-faces"),
        (FACE_DETECTORS, "face detector: finds the faces to restore"),
        (UPSCALERS, "upscaler, or a repair model: restore --denoise / --colorize"),
        (SUBJECT_SEGMENTERS, "subject segmenter: select's subject (--segmenter)"),
        (SEGMENTERS, "Segment Anything: select's subject in a box (--segmenter)"),
    )
    rows = [
        (found.name, f"{kind.subfolder}/", use, str(found.path))
        for kind, use in uses
        for found in registry.catalog.find(kind)
    ]
    if rows:
        print()
        print_table([("NAME", "FOLDER", "WHAT IT DOES", "SOURCE"), *rows])


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Left-aligned columns; the last one (a path) unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*padded, row[-1]]))


# --- the command ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inlayer", description="Local image-to-image AI for GIMP and Krita."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="edit an image file: inpaint, img2img, txt2img, fill, remove, restore or select",
        description="Edit an image file and write the full-size result.",
    )
    add_run_arguments(run)
    run.set_defaults(handler=run_command)

    inspect = commands.add_parser(
        "inspect",
        help="say what an image file tells about its origin (made with AI? by what?)",
        description="Print the origin an image file states: IPTC digital source type, the AI "
        "system and prompt, AUTOMATIC1111 generation data and C2PA Content Credentials.",
    )
    inspect.add_argument("file", type=Path, help="an image file")
    inspect.set_defaults(handler=inspect_command)

    models = commands.add_parser("models", help="list the models Inlayer can use")
    add_model_options(models, device=False)
    models.set_defaults(handler=models_command)
    models_commands = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND")

    # Each `register` adds its parsers, giving each a handler with `set_defaults(handler=fn)`,
    # where `fn(args) -> int` returns the exit code.
    serve_command.register(commands)  # inlayer serve
    token_command.register(commands)  # inlayer token add|revoke|list
    packaging_commands.register(commands)  # inlayer install-plugins, inlayer config
    packaging_commands.register_models(models_commands)  # inlayer models pull
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (CommandError, InlayerError) as error:
        print(f"inlayer: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("inlayer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
