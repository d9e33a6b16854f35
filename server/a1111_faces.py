"""AUTOMATIC1111's face restoration on Inlayer's face restorers (core/face_restore.py):
`restore_faces` on txt2img and img2img, GET /sdapi/v1/face-restorers, and the
`gfpgan_visibility` / `codeformer_visibility` / `codeformer_weight` of the extras routes.

A1111 names its two restorers "GFPGAN" and "CodeFormer"; Inlayer lists the files of its
facerestore_models/ folders by name. A visibility picks the first file whose name says the
restorer it asks for (else the first listed), and blends the restored picture over the input by
the visibility, as A1111 does; CodeFormer takes `codeformer_weight` as its fidelity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inlayer.core.client.protocol import EditRequest, EditResult, InvalidRequest, Mode, RGBAImage
from inlayer.core.face_restore import NO_FACE_RESTORER
from inlayer.core.geometry import image_array

from .service import Service


def face_restorer_names(service: Service) -> list[str]:
    return service.list_image_models().get("restore_faces", [])


def face_restorers_answer(service: Service) -> list[dict[str, Any]]:
    """GET /sdapi/v1/face-restorers, in A1111's shape."""
    return [{"name": name, "cmd_dir": None} for name in face_restorer_names(service)]


def restore_faces_field(body: Any, service: Service) -> dict[str, str]:
    """The request field `restore_faces: true` asks for: the first face restorer listed."""
    if not getattr(body, "restore_faces", False):
        return {}
    names = face_restorer_names(service)
    if not names:
        raise InvalidRequest("restore_faces", NO_FACE_RESTORER)
    return {"restore_faces": names[0]}


def _restorer_for(service: Service, word: str, field: str) -> str:
    names = face_restorer_names(service)
    if not names:
        raise InvalidRequest(field, NO_FACE_RESTORER)
    return next((name for name in names if word in name.lower()), names[0])


def extras_face_restore(body: Any, service: Service) -> tuple[str, float] | None:
    """The face restorer ``NAME:FIDELITY`` an extras body asks for, and its visibility; None
    when it asks for none."""
    gfpgan = float(getattr(body, "gfpgan_visibility", 0) or 0)
    codeformer = float(getattr(body, "codeformer_visibility", 0) or 0)
    for field, value in (("gfpgan_visibility", gfpgan), ("codeformer_visibility", codeformer)):
        if not 0.0 <= value <= 1.0:
            raise InvalidRequest(field, f"is {value}; it must be in [0, 1]")
    if gfpgan and codeformer:
        raise InvalidRequest(
            "codeformer_visibility", "one face restorer at a time: set gfpgan_visibility to 0"
        )
    if gfpgan:
        return f"{_restorer_for(service, 'gfpgan', 'gfpgan_visibility')}:0", gfpgan
    if codeformer:
        weight = float(getattr(body, "codeformer_weight", 0.5) or 0.0)
        if not 0.0 <= weight <= 1.0:
            raise InvalidRequest("codeformer_weight", f"is {weight}; it must be in [0, 1]")
        name = _restorer_for(service, "codeformer", "codeformer_visibility")
        return f"{name}:{weight:g}", codeformer
    return None


def face_restore_request(pixels: np.ndarray, restorer: str) -> EditRequest:
    """The restore job of an extras image (HxWx4 uint8)."""
    height, width = pixels.shape[:2]
    image = RGBAImage(width, height, np.ascontiguousarray(pixels).tobytes())
    return EditRequest(mode=Mode.RESTORE, image=image, restore_faces=restorer)


def with_restored_faces(pixels: np.ndarray, result: EditResult, visibility: float) -> np.ndarray:
    """`pixels` with the restore job's faces blended over them by `visibility` (unchanged
    when it found none)."""
    if not result.images:
        return pixels
    restored = image_array(result.images[0].image).astype(np.float32)
    mixed = pixels.astype(np.float32) + (restored - pixels) * visibility
    mixed[..., 3] = pixels[..., 3]
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
