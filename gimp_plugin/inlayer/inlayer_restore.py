"""Filters ▸ Inlayer ▸ Restore Photo…: the active layer (or its selected part) through the
server's restoration models, no prompt: a denoise or JPEG-repair model, a colorization model and
a face restorer, each chosen from the files the server lists, each optional (at least one).

It runs as the other procedures do (`inlayer.run_task`): the result is a new layer above the
source, masked by the selection when there is one. A layer where there was nothing to do (only
faces asked for, and none found) gets no layer: the server's answer says so, as a message.

Each model goes with its number (the face's fidelity, the repair's strength); the request takes
both as one field, ``MODEL:NUMBER`` (`model_fields`). Standard library only, with the
`inlayer_client` package beside this file.
"""

from __future__ import annotations

from typing import Any

from inlayer_arguments import (
    FEATHER,
    GROW,
    ArgumentRefused,
    FloatArgument,
    ListedArgument,
    field_label,
)

RESTORE_PROCEDURE = "inlayer-restore"
RESTORE_LABEL = "Restore _Photo..."
RESTORE_BLURB = (
    "Restore faces, take out noise and JPEG blocks, or colour a black-and-white photo: the "
    "active layer (only its selected part when there is a selection) as a new layer"
)
NONE_CHOSEN = (("", "None"),)

FACES = ListedArgument(
    "restore-faces",
    "_Face restorer",
    "A face restorer the server lists (GFPGAN, RestoreFormer, CodeFormer); empty: none",
    strip=True,
    image_model_field="restore_faces",
    fixed=NONE_CHOSEN,
)
FIDELITY = FloatArgument(
    "face-fidelity",
    "Face fi_delity",
    "How much of the original face to keep: 0 restores fully, 1 keeps the face as it is "
    "(CodeFormer's weight; about 0.5 suits it)",
    0.0,
    1.0,
    0.0,
)
DENOISE = ListedArgument(
    "denoise",
    "_Denoise / JPEG repair",
    "A repair model the server lists among its upscale_models (DRUNet, SCUNet, FBCNN); empty: none",
    strip=True,
    image_model_field="denoise",
    fixed=NONE_CHOSEN,
)
DENOISE_STRENGTH = FloatArgument(
    "denoise-strength",
    "De_noise strength",
    "How much of the repaired picture shows over the original",
    0.0,
    1.0,
    1.0,
)
COLORIZE = ListedArgument(
    "colorize",
    "_Colorize",
    "A colorization model the server lists among its upscale_models (DDColor); empty: none",
    strip=True,
    image_model_field="colorize",
    fixed=NONE_CHOSEN,
)
COLORIZE_STRENGTH = FloatArgument(
    "colorize-strength",
    "Colori_ze strength",
    "How much of the colours show over the original",
    0.0,
    1.0,
    1.0,
)
RESTORE_ARGUMENTS = (
    FACES,
    FIDELITY,
    DENOISE,
    DENOISE_STRENGTH,
    COLORIZE,
    COLORIZE_STRENGTH,
    GROW,
    FEATHER,
)
# Each model argument, and the argument of the number that goes with it.
PAIRS = ((FACES, FIDELITY), (DENOISE, DENOISE_STRENGTH), (COLORIZE, COLORIZE_STRENGTH))


def model_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with each model and its number as the request's ``MODEL:NUMBER`` ("" for no
    model); `ArgumentRefused` when no model is chosen at all."""
    paired = dict(fields)
    for model, number in PAIRS:
        name, value = paired[model.field], paired.pop(number.field)
        paired[model.field] = f"{name}:{value:g}" if name else ""
    if not any(paired[model.field] for model, _ in PAIRS):
        labels = ", ".join(field_label(model.label) for model, _ in PAIRS)
        raise ArgumentRefused(f"Nothing to restore: choose at least one of {labels}.")
    return paired
