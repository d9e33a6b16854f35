"""The `inlayer install-plugins`, `inlayer config` and `inlayer models pull` commands.

`inlayer.core.cli` mounts them through `register` (top-level commands) and `register_models`
(under `inlayer models`). Each handler takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from inlayer.core.client import paths
from inlayer.core.command_line import CommandError
from inlayer.core.model_files import (
    CHECKPOINTS,
    CONTROLNETS,
    DEPTH_ESTIMATORS,
    FACE_DETECTORS,
    FACE_RESTORERS,
    HUB_FILE_PATTERNS,
    HUB_IGNORE_PATTERNS,
    LORAS,
    OBJECT_REMOVERS,
    SEGMENTERS,
    SUBJECT_SEGMENTERS,
    TINY_VAES,
    ModelFileKind,
)
from inlayer.core.settings import Settings, load_settings, write_template

from . import plugins, release_files
from .release_files import ReleaseFile

# --- inlayer install-plugins --------------------------------------------------------------------


def add_install_plugins_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gimp", action="store_true", help="the GIMP 3 plug-in")
    parser.add_argument("--krita", action="store_true", help="the Krita plug-in")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        metavar="DIR",
        help="install into this folder instead of the ones found: for GIMP the profile that "
        "holds plug-ins/ (what GIMP3_DIRECTORY points at), for Krita the resource folder that "
        "holds pykrita/; needs --gimp or --krita",
    )
    parser.add_argument(
        "--kritarc",
        type=Path,
        metavar="FILE",
        help="the kritarc to enable the plug-in in (default: the one that belongs with the "
        "resource folder)",
    )
    parser.add_argument(
        "--link",
        action="store_true",
        help="symlink the files to this checkout instead of copying them (for development)",
    )
    parser.add_argument("--uninstall", action="store_true", help="remove the plug-ins instead")
    parser.add_argument(
        "--krita-zip",
        type=Path,
        metavar="OUT.zip",
        help="only write the zip for Krita's Tools > Scripts > Import Python Plugin from File",
    )
    parser.add_argument(
        "--archives",
        type=Path,
        metavar="DIR",
        help="only write both plug-ins as zips into DIR, for installing without a terminal: "
        "inlayer-gimp-VERSION.zip and inlayer-krita-VERSION.zip",
    )


def install_plugins(args: argparse.Namespace) -> int:
    if args.krita_zip:
        _print_actions(plugins.build_krita_zip(args.krita_zip))
        return 0
    if args.archives:
        _print_actions(plugins.build_archives(args.archives))
        return 0
    gimp, krita = (args.gimp, args.krita) if args.gimp or args.krita else (True, True)
    if args.profile_dir and gimp and krita:
        raise CommandError("--profile-dir names one editor's folder; add --gimp or --krita")
    if gimp:
        profiles = [args.profile_dir] if args.profile_dir else plugins.find_gimp_profiles()
        if not profiles:
            print(
                "GIMP: no GIMP 3 profile found; start GIMP 3 once (it creates one), then run "
                "`inlayer install-plugins --gimp` again"
            )
        for profile in profiles:
            if args.uninstall:
                _print_actions(plugins.uninstall_gimp(profile))
            else:
                _print_actions(plugins.install_gimp(profile, link=args.link))
    if krita:
        if args.profile_dir:
            kritarc = args.kritarc or plugins.kritarc_for(args.profile_dir)
            locations = [plugins.KritaLocation(args.profile_dir, kritarc)]
        else:
            locations = plugins.find_krita_locations()
        if not locations:
            print(
                "Krita: no Krita resource folder found; start Krita once, then run "
                "`inlayer install-plugins --krita` again (or import the zip from "
                "`inlayer install-plugins --krita-zip inlayer_krita.zip` in Krita)"
            )
        for location in locations:
            if args.uninstall:
                actions = plugins.uninstall_krita(location.resource_dir, kritarc=location.kritarc)
            else:
                actions = plugins.install_krita(
                    location.resource_dir, link=args.link, kritarc=location.kritarc
                )
            _print_actions(actions)
    return 0


def _print_actions(actions: list[str]) -> None:
    for action in actions:
        print(action)


# --- inlayer models pull ------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownModel:
    """A recommended model `inlayer models pull` knows by a short name."""

    repo_id: str
    description: str
    # File names (without extension) under which other tools keep the same weights, so that a
    # copy in an AUTOMATIC1111 or ComfyUI folder is used instead of downloading it again.
    checkpoint_names: tuple[str, ...]
    kind: ModelFileKind = CHECKPOINTS  # where in a models folder it goes
    # The one file of the repo to fetch, saved as NAME.safetensors (a LoRA); None: a folder.
    single_file: str | None = None
    # The files of a folder to fetch; None: a diffusers pipeline's (HUB_FILE_PATTERNS).
    patterns: tuple[str, ...] | None = None
    # Published on a project's release page instead: fetched from there, checked and kept as
    # NAME.safetensors (a pickled file) or as published (release_files.py); `repo_id` is then
    # the project's.
    release: ReleaseFile | None = None

    @property
    def file_suffix(self) -> str | None:
        """The suffix of the one file the pull keeps; None for a folder."""
        if self.release:
            pickled = self.release.pickled_purpose is not None
            return ".safetensors" if pickled else Path(self.release.filename).suffix
        return Path(self.single_file).suffix if self.single_file else None


_CONTROLNET_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
KNOWN_MODELS = {
    "sd15-inpainting": KnownModel(
        "stable-diffusion-v1-5/stable-diffusion-inpainting",
        "Stable Diffusion 1.5 inpainting: the default for inpaint (about 2 GB)",
        ("sd-v1-5-inpainting", "512-inpainting-ema"),
    ),
    "sd15": KnownModel(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "Stable Diffusion 1.5: img2img and text-to-image (about 2 GB)",
        ("v1-5-pruned-emaonly", "v1-5-pruned"),
    ),
    "sdxl": KnownModel(
        "stabilityai/stable-diffusion-xl-base-1.0",
        "Stable Diffusion XL base: better pictures, needs about 8 GB of GPU memory (about 7 GB)",
        ("sd_xl_base_1.0",),
    ),
    "sdxl-inpainting": KnownModel(
        "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
        "Stable Diffusion XL inpainting (about 7 GB)",
        ("sd_xl_base_1.0_inpainting_0.1",),
    ),
    # The fast preset's pieces (core/presets.py).
    "lcm-lora-sd15": KnownModel(
        "latent-consistency/lcm-lora-sdv1-5",
        "LCM-LoRA for SD 1.5 models: the fast preset in 4 steps (about 135 MB)",
        ("lcm-lora-sdv1-5", "lcm_lora_sd15"),
        kind=LORAS,
        single_file="pytorch_lora_weights.safetensors",
    ),
    "lcm-lora-sdxl": KnownModel(
        "latent-consistency/lcm-lora-sdxl",
        "LCM-LoRA for SDXL models: the fast preset in 4 steps (about 395 MB)",
        ("lcm-lora-sdxl", "lcm_lora_sdxl"),
        kind=LORAS,
        single_file="pytorch_lora_weights.safetensors",
    ),
    "taesd": KnownModel(
        "madebyollin/taesd",
        "tiny autoencoder for SD 1.5 and 2.x: fast encode, decode and previews (about 10 MB)",
        ("taesd",),
        kind=TINY_VAES,
        patterns=("config.json", "diffusion_pytorch_model.safetensors"),
    ),
    "taesdxl": KnownModel(
        "madebyollin/taesdxl",
        "tiny autoencoder for SDXL: fast encode, decode and previews (about 10 MB)",
        ("taesdxl",),
        kind=TINY_VAES,
        patterns=("config.json", "diffusion_pytorch_model.safetensors"),
    ),
    # The restore modes' models (core/object_removal.py, core/face_restore.py).
    "lama": KnownModel(
        "smartywu/lama-big-safetensors",
        "LaMa (big-lama): removes objects from a selection in seconds on a CPU (about 200 MB)",
        ("big-lama", "lama"),
        kind=OBJECT_REMOVERS,
        single_file="model.safetensors",
    ),
    # MAT as published for krita-ai-diffusion and ComfyUI's inpaint nodes, in safetensors.
    "mat": KnownModel(
        "Acly/MAT",
        "MAT (Places 512): removes large areas; needs inlayer[restore-extra], non-commercial "
        "licence (about 125 MB)",
        ("MAT_Places512_G_fp16", "Places_512_FullData_G"),
        kind=OBJECT_REMOVERS,
        single_file="MAT_Places512_G_fp16.safetensors",
    ),
    # The face restorers A1111 offers, as their makers publish them (pinned by SHA-256).
    "gfpgan": KnownModel(
        "TencentARC/GFPGAN",
        "GFPGAN v1.4: restores blurred faces (Apache-2.0; about 350 MB)",
        ("GFPGANv1.4",),
        kind=FACE_RESTORERS,
        release=ReleaseFile(
            "TencentARC/GFPGAN",
            "v1.3.0",
            "GFPGANv1.4.pth",
            size=348_632_874,
            sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
            pickled_purpose="FaceSR",
        ),
    ),
    "codeformer": KnownModel(
        "sczhou/CodeFormer",
        "CodeFormer: restores faces, with a fidelity weight; needs inlayer[restore-extra], "
        "non-commercial licence (S-Lab) (about 375 MB)",
        ("codeformer-v0.1.0",),
        kind=FACE_RESTORERS,
        release=ReleaseFile(
            "sczhou/CodeFormer",
            "v0.1.0",
            "codeformer.pth",
            size=376_637_898,
            sha256="1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7",
            pickled_purpose="FaceSR",
            other_names=("codeformer-v0.1.0.pth",),  # ComfyUI's face restore nodes' name
            extra="restore-extra",
            modules=("spandrel", "spandrel_extra_arches"),
        ),
    ),
    # Subject segmenters for select (core/salient_selection.py), as rembg publishes them.
    "isnet": KnownModel(
        "danielgatis/rembg",
        "IS-Net (DIS): select finds the subject without a prompt (about 180 MB; trained on "
        "DIS5K, whose terms are for research)",
        ("isnet-general-use",),
        kind=SUBJECT_SEGMENTERS,
        release=ReleaseFile(
            "danielgatis/rembg",
            "v0.0.0",
            "isnet-general-use.onnx",
            size=178_648_008,
            sha256="60920e99c45464f2ba57bee2ad08c919a52bbf852739e96947fbb4358c0d964a",
            modules=("onnxruntime",),
        ),
    ),
    "birefnet-lite": KnownModel(
        "danielgatis/rembg",
        "BiRefNet lite: select finds the subject without a prompt, fine edges (MIT; about 225 MB)",
        ("BiRefNet-general-bb_swin_v1_tiny-epoch_232",),
        kind=SUBJECT_SEGMENTERS,
        release=ReleaseFile(
            "danielgatis/rembg",
            "v0.0.0",
            "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
            size=224_005_088,
            sha256="5600024376f572a557870a5eb0afb1e5961636bef4e1e22132025467d0f03333",
            other_names=("birefnet-general-lite.onnx",),  # rembg's own name for its copy
            modules=("onnxruntime",),
        ),
    ),
    "yunet": KnownModel(
        "opencv/face_detection_yunet",
        "OpenCV's YuNet face detector: finds the faces that restore faces (about 230 KB)",
        ("face_detection_yunet_2023mar",),
        kind=FACE_DETECTORS,
        single_file="face_detection_yunet_2023mar.onnx",
    ),
    "sam-vit-base": KnownModel(
        "facebook/sam-vit-base",
        "Segment Anything (ViT-B): select finds the subject in a box (about 375 MB)",
        ("sam-vit-base",),
        kind=SEGMENTERS,
        patterns=("config.json", "preprocessor_config.json", "model.safetensors"),
    ),
    "sd-turbo": KnownModel(
        "stabilityai/sd-turbo",
        "SD-Turbo (SD 2.1 family): a distilled model, good pictures in 1-4 steps (about 5 GB)",
        ("sd_turbo",),
    ),
    # Guided edits (core/controlnets.py, core/preprocessors.py).
    **{
        f"controlnet-{kind}-sd15": KnownModel(
            f"lllyasviel/control_v11{version}_sd15_{kind}",
            f"ControlNet {kind} for SD 1.5 models: {use} (about 1.4 GB)",
            (f"control_v11{version}_sd15_{kind}",),
            kind=CONTROLNETS,
            patterns=_CONTROLNET_FILES,
        )
        for kind, version, use in (
            ("scribble", "p", "a sketch or scribble guides the picture"),
            ("lineart", "p", "line art guides the picture"),
            ("canny", "p", "the edges of an image guide the picture"),
            ("softedge", "p", "the soft edges of an image guide the picture"),
            ("depth", "f1p", "a depth map guides the picture"),
        )
    },
    "controlnet-canny-sdxl": KnownModel(
        "diffusers/controlnet-canny-sdxl-1.0",
        "ControlNet canny for SDXL models (about 2.5 GB)",
        ("controlnet-canny-sdxl-1.0",),
        kind=CONTROLNETS,
        patterns=_CONTROLNET_FILES,
    ),
    "controlnet-scribble-sdxl": KnownModel(
        "xinsir/controlnet-scribble-sdxl-1.0",
        "ControlNet scribble for SDXL models: a sketch guides the picture (about 2.5 GB)",
        ("controlnet-scribble-sdxl-1.0",),
        kind=CONTROLNETS,
        patterns=_CONTROLNET_FILES,
    ),
    "instruct-pix2pix": KnownModel(
        "timbrooks/instruct-pix2pix",
        "InstructPix2Pix (SD 1.5 family): edits that follow an instruction (about 2 GB)",
        ("instruct-pix2pix-00-22000",),
    ),
    "depth-anything-small": KnownModel(
        "depth-anything/Depth-Anything-V2-Small-hf",
        "Depth Anything V2 small: the ControlNet depth preprocessor's model (about 100 MB)",
        ("Depth-Anything-V2-Small-hf",),
        kind=DEPTH_ESTIMATORS,
        patterns=("config.json", "preprocessor_config.json", "model.safetensors"),
    ),
}


def add_pull_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(KNOWN_MODELS)
    parser.add_argument(
        "model",
        metavar="NAME|REPO",
        help=f"a recommended model ({names}) or a Hugging Face repo id",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="download even when a copy of the model is already in a models folder",
    )


def pull_target(model: str, settings: Settings) -> tuple[str, Path]:
    """The repo id to download and the folder it goes to (named as `inlayer models` lists it)."""
    known = KNOWN_MODELS.get(model)
    if known:
        name = model + (known.file_suffix or "")
        return known.repo_id, settings.download_dir / known.kind.subfolder / name
    if model.count("/") != 1 or not all(model.split("/")):
        raise CommandError(
            f"{model!r} is neither a recommended model "
            f"({', '.join(KNOWN_MODELS)}) nor a Hugging Face repo id (owner/name)"
        )
    return model, settings.download_dir / model.split("/")[1]


def existing_copy(model: str, target: Path, settings: Settings) -> Path | None:
    """A copy of `model` already on disk: a complete diffusers folder of the same name, or a
    known checkpoint file, in any models folder (AUTOMATIC1111's and ComfyUI's included)."""
    known = KNOWN_MODELS.get(model)
    kind = known.kind if known else CHECKPOINTS
    suffix = known.file_suffix if known and known.file_suffix else ".safetensors"
    names = [f"{name}{suffix}" for name in known.checkpoint_names] if known else []
    folders = [target.parent, *(d / kind.subfolder for d in settings.all_models_dirs)]
    for folder in dict.fromkeys(folders):
        candidate = folder / target.name
        if candidate.is_file() and known and known.file_suffix:
            return candidate
        marker = kind.folder_marker or "model_index.json"
        if (candidate / marker).is_file() and not _partial_download(candidate):
            return candidate
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _partial_download(folder: Path) -> bool:
    """huggingface_hub keeps unfinished files as *.incomplete until they are complete."""
    return any((folder / ".cache").rglob("*.incomplete"))


def pull(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    settings = load_settings()
    repo_id, target = pull_target(args.model, settings)
    copy = None if args.force else existing_copy(args.model, target, settings)
    if copy is not None:
        print(f"{args.model} is already there: {copy} (--force downloads it anyway)")
        return 0
    known = KNOWN_MODELS.get(args.model)
    again = (
        f"Run `inlayer models pull {args.model}` again: the files already downloaded are kept "
        "and it goes on from there"
    )
    if known and known.release:
        return _pull_release(args.model, known, target, settings, again, force=args.force)
    print(f"Downloading {repo_id} into {target} (an interrupted download goes on when run again)")
    try:
        if known and known.single_file:
            _download_one_file(repo_id, known.single_file, target)
        else:
            _download_folder(
                repo_id,
                target,
                allow=known.patterns if known and known.patterns else HUB_FILE_PATTERNS,
            )
    except LocalEntryNotFoundError as error:
        # huggingface_hub reports any failure to reach the files this way, offline or not.
        reason = (
            "downloads are off (HF_HUB_OFFLINE is set)"
            if _offline()
            else str(error.__cause__ or error)
        )
        print(
            f"inlayer models pull: cannot download {repo_id}: {reason}. {again}.", file=sys.stderr
        )
        return 1
    except OSError as error:
        reason = (
            f"the disk holding {target.parent} is full; free some space"
            if error.errno == errno.ENOSPC
            else str(error)
        )
        print(
            f"inlayer models pull: cannot download {repo_id}: {reason}. {again}.", file=sys.stderr
        )
        return 1
    except HfHubHTTPError as error:
        print(f"inlayer models pull: cannot download {repo_id}: {error}. {again}.", file=sys.stderr)
        return 1
    except Exception as error:
        # raises for a dropped connection (its own exception classes change between versions)
        print(
            f"inlayer models pull: the download of {repo_id} broke off "
            f"({type(error).__name__}: {error}). {again}.",
            file=sys.stderr,
        )
        return 1
    _print_done(known.kind if known else CHECKPOINTS, target)
    return 0


def _pull_release(
    model: str, known: KnownModel, target: Path, settings: Settings, again: str, *, force: bool
) -> int:
    """A model published on a release page: the published file (a copy already in a folder,
    unless `force`, else the release's), checked, kept as `target` (converted, where it is
    pickled)."""
    release = known.release
    assert release is not None
    extra = release_files.missing_extra(release)
    if extra:
        print(
            f"inlayer models pull: {model} needs {extra!r} to be used: "
            f'pip install "inlayer[{extra}]", then run `inlayer models pull {model}` again',
            file=sys.stderr,
        )
        return 1
    pickled = release.pickled_purpose is not None
    published = None
    if not force:
        published = release_files.find_published_copy(
            release, known.kind, settings.all_models_dirs, settings.tool_dirs
        )
    if published and not pickled:
        print(f"{model} is already there: {published} (listed as {published.stem!r})")
        return 0
    download = None
    if published:
        print(f"Using the published {release.filename} found in {published.parent}")
    else:
        download = target.with_name(f".{target.stem}.download{Path(release.filename).suffix}")
        print(
            f"Downloading {release.url} ({release.size / 1e6:.0f} MB; an interrupted download "
            "goes on when run again)"
        )
        try:
            release_files.download(release, download, release_files.ProgressLine())
        except release_files.ReleaseError as error:
            print(f"inlayer models pull: {error}. {again}.", file=sys.stderr)
            return 1
        published = download
    print(f"The file is the published one (SHA-256 {release.sha256[:12]}…); keeping it as {target}")
    if pickled:
        try:
            architecture = release_files.convert(release, published, target)
        except release_files.ReleaseError as error:
            print(f"inlayer models pull: cannot convert {published}: {error}", file=sys.stderr)
            return 1
        print(f"It holds a {architecture}, now as .safetensors.")
        if download:
            download.unlink()
    else:
        assert download is not None  # a published copy was taken as it is above
        download.replace(target)
    _print_done(known.kind, target)
    return 0


def _print_done(kind: ModelFileKind, target: Path) -> None:
    use = {
        LORAS: "LoRA",
        TINY_VAES: "tiny autoencoder",
        OBJECT_REMOVERS: "remover (remove's --remover)",
        FACE_DETECTORS: "face detector",
        FACE_RESTORERS: "face restorer (restore's --faces)",
        CONTROLNETS: "ControlNet",
        DEPTH_ESTIMATORS: "depth estimator",
        SEGMENTERS: "segmenter (select's --segmenter)",
        SUBJECT_SEGMENTERS: "segmenter (select's --segmenter)",
    }.get(kind)
    name = target.stem if target.suffix else target.name
    print(f"Done. Use it as {use or 'model'} {name!r} (`inlayer models` lists it).")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def staging_folder(target: Path) -> Path:
    """Where a download of `target` lands until it is complete: hidden, so that no models
    folder lists a half-written model."""
    return target.with_name(f".{target.name}.download")


def _download_folder(repo_id: str, target: Path, allow: tuple[str, ...]) -> None:
    """A repository's model folder, moved into place only once every file is complete."""
    from huggingface_hub import snapshot_download

    staging = staging_folder(target)
    snapshot_download(
        repo_id,
        local_dir=staging,
        allow_patterns=list(allow),
        ignore_patterns=list(HUB_IGNORE_PATTERNS),
    )
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's download notes
    if target.exists():  # --force: the complete new copy replaces the old one
        shutil.rmtree(target)
    staging.replace(target)


def _download_one_file(repo_id: str, filename: str, target: Path) -> None:
    """One file of a repo, saved as `target` (a LoRA keeps the name Inlayer lists it by)."""
    from huggingface_hub import hf_hub_download

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(target)
    downloaded = Path(hf_hub_download(repo_id, filename, local_dir=staging))
    downloaded.replace(target)


# --- inlayer config -----------------------------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--init",
        action="store_true",
        help="write the commented settings file unless one exists",
    )


def show_config(args: argparse.Namespace) -> int:
    path = paths.settings_path()
    if args.init:
        print(f"wrote {path}" if write_template(path) else f"{path} exists; left as it is")
    settings = load_settings(path)
    print(f"settings file: {path}{'' if path.is_file() else ' (absent: built-in defaults)'}")
    print(f"server: {settings.host}:{settings.port}")
    print("models folders:")
    for folder in settings.all_models_dirs:
        print(f"  {folder}{'' if folder.is_dir() else ' (missing)'}")
    print(f"downloads go to: {settings.download_dir}")
    for mode, model in settings.default_models.items():
        print(f"default for {mode.value}: {model}")
    print(f"allow pickle: {settings.allow_pickle}")
    print(
        f"device: {settings.device or 'auto'}, dtype: {settings.dtype or 'auto'}, "
        f"cpu offload: {settings.cpu_offload}, backend: {settings.backend}, "
        f"compile: {settings.compile}"
    )
    print(
        f"A1111 routes need the token: {settings.a1111_auth == 'token'}; "
        f"Content Credentials on written images: {settings.content_credentials}"
    )
    return 0


# --- mounting -----------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction) -> None:
    install = commands.add_parser(
        "install-plugins",
        help="install the GIMP and Krita plug-ins into every profile found",
        description="Install (or --uninstall) the plug-ins, with the client they carry, into "
        "every GIMP 3 profile and Krita resource folder found. Without --gimp or --krita: both.",
    )
    add_install_plugins_arguments(install)
    install.set_defaults(handler=install_plugins)
    settings = commands.add_parser(
        "config",
        help="show the settings in effect and where they come from",
        description=f"Show the settings in effect ({paths.settings_path()} and environment).",
    )
    add_config_arguments(settings)
    settings.set_defaults(handler=show_config)


def register_models(models_commands: argparse._SubParsersAction) -> None:
    pull_parser = models_commands.add_parser(
        "pull",
        help="download a model into the first models folder (resumes interrupted downloads)",
        description="Download a recommended model or a Hugging Face repo into the first models "
        "folder, unless a copy is already in a models folder.",
    )
    add_pull_arguments(pull_parser)
    pull_parser.set_defaults(handler=pull)
