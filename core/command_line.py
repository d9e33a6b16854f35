"""What every `inlayer` subcommand shares: its error, the model options, and the settings they
override.

`inlayer run`, `inlayer models` and `inlayer serve` take the same `--models-dir`, `--device` and
`--backend` options and apply them to the user's settings the same way, here.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .settings import BACKEND_CHOICES, Settings, load_settings


class CommandError(Exception):
    """A bad input the command reports in one line (exit code 2)."""


def add_model_options(
    parser: argparse.ArgumentParser,
    *,
    device: bool = True,
    allow_pickle: bool = False,
    more_backends: tuple[str, ...] = (),
    more_backends_help: str = "",
) -> None:
    """--models-dir (repeatable), and optionally --device with --backend, and --allow-pickle.
    `more_backends`: other --backend values a command takes (`inlayer serve --backend ray`)."""
    parser.add_argument(
        "--models-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a folder of models (repeatable); only these folders are searched, not the ones "
        "config.ini names",
    )
    if device:
        parser.add_argument(
            "--device",
            default=None,
            help="torch device, e.g. cpu, cuda:0 (default: config.ini, else the best one)",
        )
        parser.add_argument(
            "--backend",
            choices=BACKEND_CHOICES + more_backends,
            default=None,
            help="what computes the model on the CPU: torch, or openvino (the UNet and tiny "
            "autoencoder converted once; needs inlayer[openvino])"
            + more_backends_help
            + "; default: config.ini, else torch",
        )
    if allow_pickle:
        parser.add_argument(
            "--allow-pickle",
            action="store_true",
            help="allow pickled checkpoints (.ckpt, .bin): they can run code, only for files "
            "you trust",
        )


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings config.ini and the environment describe, with the command line's options
    (`add_model_options`) applied on top."""
    settings = load_settings()
    overrides: dict[str, object] = {}
    if getattr(args, "models_dir", None):
        # Only these folders: no configured ones, and no other tools' checkpoints.
        overrides.update(models_dirs=tuple(args.models_dir), a1111_dir=None, comfyui_dir=None)
    if getattr(args, "allow_pickle", False):
        overrides["allow_pickle"] = True
    if getattr(args, "device", None):
        overrides["device"] = args.device
    if getattr(args, "backend", None):
        overrides["backend"] = args.backend
    return dataclasses.replace(settings, **overrides)
