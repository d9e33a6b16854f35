"""Scripting entry points: edit a document and get the new layers back.

    from inlayer_krita import api
    layers = api.inpaint(Krita.instance().activeDocument(), "a red brick wall", steps=20)

Each call reads the document (the active layer, or `node=`, or the visible image with
`visible=True`; the selection as the mask), sends the request through Inlayer's job queue and
waits for the result in a local event loop, so Krita keeps painting, redrawing and answering
meanwhile. Every variation becomes a new layer above the source, named with its prompt and seed;
the new layers are returned. Errors raise `InlayerError` (its message says what to do) and leave
the document unchanged.

Options are `EditRequest` fields: negative_prompt, strength, steps, guidance, seed, count,
scheduler, model, fill, grow, feather, image_guidance; `control=Control(layer, "scribble")` and
`style=Style(layer, 0.6)` (guides.py) guide the edit with other layers of the document.
`client=` picks another server connection (default: `inlayer_client.http_client.connect()`,
configured by INLAYER_SERVER / INLAYER_TOKEN, the docker's Server… settings or Inlayer's config
folder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from krita import Document, Node

from . import edits
from .guides import Control, Style, guide_fields
from .inlayer_client import http_client as inlayer_client
from .inlayer_client.bounds import Bounds
from .inlayer_client.protocol import InlayerError, Mode
from .jobs import Job, job_queue
from .qt import QtCore

_default_client: inlayer_client.Client | None = None


def default_client() -> inlayer_client.Client:
    """The connection the docker and these functions share, made on first use."""
    global _default_client
    if _default_client is None:
        _default_client = inlayer_client.connect()
    return _default_client


def forget_client() -> None:
    """Connect anew on next use (after the user picked another server)."""
    global _default_client
    _default_client = None


def wait(job: Job) -> None:
    """Return once `job` has finished, running Krita's event loop meanwhile."""
    if job.is_finished:
        return
    loop = QtCore.QEventLoop()
    job.finished.connect(loop.quit)
    loop.exec()


def edit(
    document: Document,
    mode: Mode,
    prompt: str = "",
    *,
    node: Node | None = None,
    visible: bool = False,
    client: inlayer_client.Client | None = None,
    control: Control | None = None,
    style: Style | None = None,
    **options: Any,
) -> list[Node]:
    """Run one edit of `mode` on `document` and return the new layers (see the module's help)."""
    client = client or default_client()
    prepared = edits.prepare(
        document,
        mode,
        prompt,
        node=node,
        visible=visible,
        guides=guides_reader(document, control, style, client),
        **options,
    )
    job = job_queue.submit(prepared, client)
    wait(job)
    if job.error is not None:
        raise job.error
    if job.result is None:
        raise InlayerError("The job ended without a result.")
    return edits.apply(prepared, job.result)


def inpaint(document: Document, prompt: str = "", **options: Any) -> list[Node]:
    """Repaint the selection to match `prompt`."""
    return edit(document, Mode.INPAINT, prompt, **options)


def img2img(document: Document, prompt: str = "", **options: Any) -> list[Node]:
    """Transform the layer (or the selected part of it) by `strength` (default 0.6)."""
    return edit(document, Mode.IMG2IMG, prompt, **options)


def txt2img(document: Document, prompt: str = "", **options: Any) -> list[Node]:
    """Generate from `prompt` into the selection, or the whole image without one."""
    return edit(document, Mode.TXT2IMG, prompt, **options)


def outpaint(document: Document, prompt: str = "", **options: Any) -> list[Node]:
    """Grow the canvas (`aspect="16:9"`, or `extend=(left, top, right, bottom)` px) and paint
    the new border around the layer; the layer itself is untouched."""
    return edit(document, Mode.OUTPAINT, prompt, **options)


def instruct(document: Document, instruction: str, **options: Any) -> list[Node]:
    """Change the layer (or the selected part of it) as `instruction` says ("make it night"),
    on an instruction-edit model; `image_guidance` (default 1.5) keeps it closer to the layer."""
    return edit(document, Mode.EDIT, instruction, **options)


def guides_reader(
    document: Document,
    control: Control | None,
    style: Style | None,
    client: inlayer_client.Client,
) -> Callable[[Bounds], dict[str, Any]] | None:
    """What `edits.prepare` calls to read the guide layers over the canvas's rectangle."""
    if control is None and style is None:
        return None
    add_ons = client.add_ons() if control is not None and not control.model else []
    return lambda rect: guide_fields(document, rect, control, style, add_ons)


def fill(document: Document, **options: Any) -> list[Node]:
    """Fill the selection from its surroundings without a model (`fill=` picks how)."""
    return edit(document, Mode.FILL, **options)
