#!/usr/bin/env python3
"""Inlayer for GIMP 3: inpaint the selection, transform a layer, or generate into the selection.

Each procedure reads only the rectangle of the active layer that the request needs (and the
selection there, as an 8-bit mask), sends it to the Inlayer server, and adds the results as new
layers above the source, masked by the feathered selection, in one undo step. The source layer is
never written to.

Which rectangle that is comes from the client's `canvas.plan_canvas`; what each argument holds,
whatever GIMP hands back, from `inlayer_arguments`. Standard library and `gi` only: GIMP's Python
has nothing else. The Inlayer client (`inlayer_client`) is installed beside this file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from editor_support import support_problem, untested_note  # noqa: E402
from inlayer_arguments import (  # noqa: E402
    ChoiceArgument,
    FloatArgument,
    IntArgument,
    TextArgument,
    arguments_for,
    explain_model_refusal,
    request_fields,
)
from inlayer_client.base import Client  # noqa: E402
from inlayer_client.bounds import Bounds, Extent  # noqa: E402
from inlayer_client.canvas import CanvasPlan, check_mask, plan_canvas  # noqa: E402
from inlayer_client.http_client import connect  # noqa: E402
from inlayer_client.protocol import (  # noqa: E402
    EditRequest,
    EditResult,
    InlayerError,
    Mask,
    Mode,
    Progress,
    RGBAImage,
)
from inlayer_dialog import run_dialog  # noqa: E402
from inlayer_guides import (  # noqa: E402
    check_guide_pixels,
    guide_arguments,
    guide_fields,
    layer_arguments,
)
from inlayer_instruct import INSTRUCT_BLURB, INSTRUCT_LABEL, INSTRUCT_PROCEDURE  # noqa: E402
from inlayer_outpaint import grow_image  # noqa: E402
from inlayer_remove import ONE_CLICK_MODES, REMOVE_BLURB, REMOVE_LABEL, REMOVE_PROCEDURE  # noqa: E402
from inlayer_repeat import REPEAT_PROCEDURE, create_repeat_procedure, remember_inpaint  # noqa: E402
from inlayer_restore import RESTORE_BLURB, RESTORE_LABEL, RESTORE_PROCEDURE  # noqa: E402
from inlayer_select import SELECT_BLURB, SELECT_LABEL, SELECT_PROCEDURE, select_by_alpha  # noqa: E402
from inlayer_server_settings import SERVER_PROCEDURE, create_server_procedure  # noqa: E402
from inlayer_upscale import UPSCALE_BLURB, UPSCALE_LABEL, UPSCALE_PROCEDURE  # noqa: E402

PLUG_IN_NAME = "inlayer"
MENU_PATH = "<Image>/Filters/Inlayer"
PARASITE_NAME = "inlayer-parameters"
# The layer's origin (IPTC digital source type, tool, model): says it was made with AI, in the .xcf.
ORIGIN_PARASITE_NAME = "inlayer-origin"
POLL_SECONDS = 0.1
# How the plug-in exchanges pixels with GIMP: Babl converts from and to the image's own format
# (grey, 16-bit, float, linear) on the way, so the server only ever sees 8-bit sRGB RGBA.
PIXEL_FORMAT = "R'G'B'A u8"
# The selection is a coverage value, not a colour: read it linear, unconverted.
MASK_FORMAT = "Y u8"
CANCEL_WATCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cancel_watch.py")


@dataclass(frozen=True)
class Task:
    """One PDB procedure: what it asks the server for; its arguments follow from the mode
    (`inlayer_arguments.arguments_for`)."""

    mode: Mode
    label: str
    blurb: str


TASKS = {
    "inlayer-inpaint": Task(
        Mode.INPAINT,
        "_Inpaint Selection...",
        "Repaint the selected part of the active layer to match the prompt",
    ),
    "inlayer-img2img": Task(
        Mode.IMG2IMG,
        "_Transform Layer...",
        "Transform the active layer (only its selected part when there is a selection)",
    ),
    "inlayer-txt2img": Task(
        Mode.TXT2IMG,
        "_Generate...",
        "Generate an image from the prompt into the selection, or the whole canvas",
    ),
    "inlayer-fill": Task(
        Mode.FILL,
        "_Fill Selection (no model)...",
        "Fill the selection from its surroundings without a model",
    ),
    REMOVE_PROCEDURE: Task(Mode.REMOVE, REMOVE_LABEL, REMOVE_BLURB),
    "inlayer-outpaint": Task(
        Mode.OUTPAINT,
        "_Outpaint (Extend Canvas)...",
        "Grow the canvas to an aspect ratio or by pixels and paint the new border",
    ),
    INSTRUCT_PROCEDURE: Task(Mode.EDIT, INSTRUCT_LABEL, INSTRUCT_BLURB),
    UPSCALE_PROCEDURE: Task(Mode.UPSCALE, UPSCALE_LABEL, UPSCALE_BLURB),
    RESTORE_PROCEDURE: Task(Mode.RESTORE, RESTORE_LABEL, RESTORE_BLURB),
    SELECT_PROCEDURE: Task(Mode.SELECT, SELECT_LABEL, SELECT_BLURB),
}


# --------------------------------------------------------------------------------------------
# Reading the image
# --------------------------------------------------------------------------------------------


class Refused(InlayerError):
    """The image or layer cannot be used; the message says what to do instead."""


@dataclass(frozen=True)
class Canvas:
    """A request's canvas: where it sits on the image, and the pixels and mask read there."""

    plan: CanvasPlan
    image: RGBAImage | None  # None: txt2img of the whole image, nothing to read
    mask: Mask | None

    @property
    def x(self) -> int:
        return self.plan.bounds.x

    @property
    def y(self) -> int:
        return self.plan.bounds.y


def check_supported(image: Gimp.Image, drawables: list[Gimp.Drawable]) -> Gimp.Layer:
    """The one layer to work on, or `Refused` saying why there is none."""
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise Refused(
            "Inlayer works on RGB and grayscale images; convert this indexed image first "
            "(Image ▸ Mode ▸ RGB)."
        )
    if len(drawables) != 1:
        raise Refused(f"Select exactly one layer ({len(drawables)} are selected).")
    drawable = drawables[0]
    if not isinstance(drawable, Gimp.Layer):
        raise Refused("Select a layer: Inlayer cannot work on a channel or a layer mask.")
    return drawable


def check_source(layer: Gimp.Layer, mode: Mode) -> None:
    """Refuse a source whose pixels are not what the user sees of it.

    Text, vector and link layers (GIMP 3.2) are fine: their buffer holds the rendered pixels,
    which are read and never written, so they stay text, vector and link layers. A group's
    pixels are its children's, and a hidden layer's are not on screen: both are refused in every
    mode that reads the layer (txt2img reads nothing, so there they only mark where the new
    layer goes)."""
    if layer.is_group():
        raise Refused(
            f"'{layer.get_name()}' is a layer group: select one of its layers, or merge the "
            "group first (Layer ▸ Merge Layer Group)."
        )
    if mode == Mode.TXT2IMG:
        return
    item: Gimp.Item | None = layer
    while item is not None:
        if not item.get_visible():
            hidden = "" if item == layer else f" (its group '{item.get_name()}' is hidden)"
            raise Refused(
                f"The layer '{layer.get_name()}' is hidden{hidden}: show it (the eye in the "
                "Layers dock) or select a visible layer."
            )
        item = item.get_parent()


def selection_bounds(image: Gimp.Image) -> Bounds | None:
    """The selection's bounding box in canvas coordinates, or None when nothing is selected."""
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    return Bounds(x1, y1, x2 - x1, y2 - y1) if non_empty else None


def read_pixels(drawable: Gimp.Drawable, area: Bounds, pixel_format: str) -> bytes:
    rectangle = Gegl.Rectangle.new(area.x, area.y, area.width, area.height)
    # NONE: outside the drawable reads as zero (unselected), never as a repeated edge.
    return drawable.get_buffer().get(rectangle, 1.0, pixel_format, Gegl.AbyssPolicy.NONE)


def read_canvas(image: Gimp.Image, layer: Gimp.Layer, request: EditRequest) -> Canvas:
    """Read the part of `layer` the request needs, and the selection there as its mask."""
    _, offset_x, offset_y = layer.get_offsets()
    layer_bounds = Bounds(offset_x, offset_y, layer.get_width(), layer.get_height())
    plan = plan_canvas(
        request.mode,
        image=Extent(image.get_width(), image.get_height()),
        source=layer_bounds,
        selection=selection_bounds(image),
        grow=request.grow,
        feather=request.feather,
        strength=request.strength,
    )
    if not plan.read_pixels:
        return Canvas(plan, None, None)
    area = plan.bounds
    mask = None
    if plan.read_mask:
        # The selection channel covers the image: read it in image coordinates.
        selection = read_pixels(image.get_selection(), area, MASK_FORMAT)
        mask = check_mask(Mask(area.width, area.height, selection))
    # A layer's buffer starts at the layer's own corner.
    pixels = read_pixels(layer, area.relative_to(layer_bounds), PIXEL_FORMAT)
    return Canvas(plan, RGBAImage(area.width, area.height, pixels), mask)


def build_request(task: Task, config: Gimp.ProcedureConfig) -> EditRequest:
    """The request the procedure's arguments say, without pixels yet."""
    values = {
        argument.name: config.get_property(argument.name) for argument in arguments_for(task.mode)
    }
    return EditRequest(mode=task.mode, **request_fields(task.mode, values))


def read_guide_layer(
    config: Gimp.ProcedureConfig, name: str, label: str, canvas: Canvas
) -> RGBAImage | None:
    """A guide layer's pixels over the canvas's rectangle (transparent outside the layer), or
    None when the argument names no layer; a hidden or empty one is refused."""
    layer = config.get_property(name)
    if layer is None:
        return None
    item: Gimp.Item | None = layer
    while item is not None:
        if not item.get_visible():
            raise Refused(
                f"The {label.replace('_', '').lower()} '{layer.get_name()}' is hidden: show it, "
                "or pick another layer."
            )
        item = item.get_parent()
    _, offset_x, offset_y = layer.get_offsets()
    layer_bounds = Bounds(offset_x, offset_y, layer.get_width(), layer.get_height())
    area = canvas.plan.bounds
    pixels = read_pixels(layer, area.relative_to(layer_bounds), PIXEL_FORMAT)
    image = RGBAImage(area.width, area.height, pixels)
    check_guide_pixels(label, layer.get_name(), image)
    return image


def add_guides(
    request: EditRequest, task: Task, config: Gimp.ProcedureConfig, canvas: Canvas
) -> None:
    """The control and style layers' pixels and settings on the request."""
    images = {
        argument.name: read_guide_layer(config, argument.name, argument.label, canvas)
        for argument in layer_arguments(task.mode)
    }
    values = {
        argument.name: config.get_property(argument.name) for argument in guide_arguments(task.mode)
    }
    control, style = images.get("control-layer"), images.get("style-layer")
    add_ons = connect().add_ons() if control is not None else ()
    for name, value in guide_fields(values, control, style, add_ons).items():
        setattr(request, name, value)


def add_canvas(request: EditRequest, canvas: Canvas) -> None:
    request.image, request.mask = canvas.image, canvas.mask
    if not canvas.plan.read_pixels:
        request.width, request.height = canvas.plan.size.width, canvas.plan.size.height


# --------------------------------------------------------------------------------------------
# Running the job
# --------------------------------------------------------------------------------------------


def run_request(request: EditRequest) -> EditResult:
    """Run `request` on the server; a model the server lacks is told in the dialog's terms."""
    try:
        return run_job(connect(), request)
    except InlayerError as error:
        raise explain_model_refusal(error, request.model) from None


def run_job(client: Client, request: EditRequest) -> EditResult:
    """Submit `request` and follow it, showing progress in GIMP's progress bar.

    Cancelling there makes GIMP end this process at once, so a small watcher process
    (cancel_watch.py) cancels the server's job when this process goes away before the job ends.
    """
    job_id = client.submit(request)
    watcher = _start_cancel_watch(job_id)
    try:
        Gimp.progress_init(f"Inlayer: {request.mode.value}")
        return client.wait(job_id, on_progress=_show_progress, poll_interval=POLL_SECONDS)
    finally:
        _stop_cancel_watch(watcher)
        Gimp.progress_end()


def _show_progress(progress: Progress) -> None:
    Gimp.progress_update(progress.step / progress.total)


def _start_cancel_watch(job_id: str) -> subprocess.Popen | None:
    try:
        return subprocess.Popen(
            [sys.executable, CANCEL_WATCH, job_id], stdin=subprocess.PIPE, env=os.environ.copy()
        )
    except OSError as error:  # no usable Python beside GIMP's: run on, without server cancel
        print(f"inlayer: cannot watch for cancel: {error}", file=sys.stderr)
        return None


def _stop_cancel_watch(watcher: subprocess.Popen | None) -> None:
    if watcher is None or watcher.stdin is None:
        return
    try:
        watcher.stdin.write(b"done\n")
        watcher.stdin.close()
        watcher.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        watcher.kill()


# --------------------------------------------------------------------------------------------
# Writing the results
# --------------------------------------------------------------------------------------------


def insert_results(
    image: Gimp.Image, source: Gimp.Layer | None, canvas: Canvas, result: EditResult
) -> list[Gimp.Layer]:
    """Add one layer per variation above `source` (None: on top of `image`), the first on top
    and visible; one undo step. Return the layers, top first."""
    layer_type = (
        Gimp.ImageType.GRAYA_IMAGE
        if image.get_base_type() == Gimp.ImageBaseType.GRAY
        else Gimp.ImageType.RGBA_IMAGE
    )
    parent = source.get_parent() if source is not None else None
    position = image.get_item_position(source) if source is not None else 0
    added: list[Gimp.Layer] = []
    image.undo_group_start()
    try:
        # Inserted last-first at the source's position, so the first variation ends up on top.
        for index in reversed(range(len(result.images))):
            generated = result.images[index]
            pixels = generated.image
            layer = Gimp.Layer.new(
                image,
                result.layer_name(generated),
                pixels.width,
                pixels.height,
                layer_type,
                100.0,
                Gimp.LayerMode.NORMAL,
            )
            layer.set_offsets(canvas.x + generated.x, canvas.y + generated.y)
            image.insert_layer(layer, parent, position)
            buffer = layer.get_buffer()
            # Written as 8-bit sRGB; Babl converts into the layer's own format and precision.
            buffer.set(
                Gegl.Rectangle.new(0, 0, pixels.width, pixels.height), PIXEL_FORMAT, pixels.data
            )
            buffer.flush()
            if canvas.mask is not None:
                # The result's alpha is the blend mask: move it into an editable layer mask and
                # make the layer opaque under it.
                layer.add_mask(layer.create_mask(Gimp.AddMaskType.ALPHA_TRANSFER))
            layer.set_visible(index == 0)
            parameters = json.dumps(result.parameters_of(generated)).encode()
            layer.attach_parasite(
                Gimp.Parasite.new(PARASITE_NAME, Gimp.PARASITE_PERSISTENT, parameters)
            )
            origin = json.dumps(result.provenance_of(generated)).encode()
            layer.attach_parasite(
                Gimp.Parasite.new(ORIGIN_PARASITE_NAME, Gimp.PARASITE_PERSISTENT, origin)
            )
            layer.update(0, 0, pixels.width, pixels.height)
            added.insert(0, layer)
    finally:
        image.undo_group_end()
    return added


def insert_outpaint(
    image: Gimp.Image, source: Gimp.Layer, canvas: Canvas, result: EditResult
) -> None:
    """Grow the image's canvas and add the result layers: one undo step for both."""
    image.undo_group_start()
    try:
        shift_x, shift_y = grow_image(image, canvas.plan.bounds, result)
        # The result is placed on the grown canvas, whose corner is the origin's left and above.
        grown_x, grown_y = shift_x - result.origin_x, shift_y - result.origin_y
        moved = dataclasses.replace(canvas.plan, bounds=canvas.plan.bounds.offset(grown_x, grown_y))
        insert_results(image, source, dataclasses.replace(canvas, plan=moved), result)
    finally:
        image.undo_group_end()


def insert_colourized(
    image: Gimp.Image, source: Gimp.Layer, canvas: Canvas, result: EditResult
) -> None:
    """A colorized result; a greyscale image becomes RGB first, its layers looking as before,
    so that the layer keeps its colours. One undo step for both."""
    image.undo_group_start()
    try:
        if image.get_base_type() == Gimp.ImageBaseType.GRAY:
            image.convert_rgb()
        insert_results(image, source, canvas, result)
    finally:
        image.undo_group_end()


def open_upscaled(image: Gimp.Image, result: EditResult, run_mode: Gimp.RunMode) -> None:
    """The upscaled result as the one layer of a new image, shown unless run by a script (the
    canvas changed size: the source image stays as it was)."""
    width, height = result.canvas_width, result.canvas_height
    upscaled = Gimp.Image.new_with_precision(
        width, height, image.get_base_type(), image.get_precision()
    )
    # The resolution that keeps the print size of what was upscaled.
    scale = result.parameters["scale"]
    _, x_resolution, y_resolution = image.get_resolution()
    upscaled.set_resolution(x_resolution * scale, y_resolution * scale)
    whole = Bounds(0, 0, width, height)
    insert_results(upscaled, None, Canvas(CanvasPlan(whole, True, False), None, None), result)
    if run_mode != Gimp.RunMode.NONINTERACTIVE:
        Gimp.Display.new(upscaled)


def select_subject(
    image: Gimp.Image, source: Gimp.Layer, canvas: Canvas, result: EditResult
) -> None:
    """The subject the result's alpha holds as the image's selection; the layers unchanged.
    One undo step."""
    image.undo_group_start()
    try:
        # Unmasked: the result's alpha is the subject, not a blend mask to move into a mask.
        (cut_out,) = insert_results(image, source, dataclasses.replace(canvas, mask=None), result)
        select_by_alpha(image, source, cut_out)
    finally:
        image.undo_group_end()


# --------------------------------------------------------------------------------------------
# The procedures
# --------------------------------------------------------------------------------------------


def run_task(procedure, run_mode, image, drawables, config, _data):
    task = TASKS[procedure.get_name()]
    interactive = run_mode == Gimp.RunMode.INTERACTIVE and task.mode not in ONE_CLICK_MODES
    if interactive and not run_dialog(procedure, task.mode, image, drawables, config, PLUG_IN_NAME):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        problem = support_problem(Gimp)
        if problem:
            raise Refused(problem)
        layer = check_supported(image, drawables)
        check_source(layer, task.mode)
        request = build_request(task, config)
        canvas = read_canvas(image, layer, request)
        add_canvas(request, canvas)
        add_guides(request, task, config, canvas)
        request.validate()
        result = run_request(request)
        if not result.images:  # nothing was to be done (no face, no subject): the server says so
            Gimp.message(result.hint)
        elif task.mode == Mode.UPSCALE:
            open_upscaled(image, result, run_mode)
        elif task.mode == Mode.SELECT:
            select_subject(image, layer, canvas, result)
        elif task.mode == Mode.OUTPAINT:
            insert_outpaint(image, layer, canvas, result)
        elif task.mode == Mode.RESTORE and request.colorize:
            insert_colourized(image, layer, canvas, result)
        else:
            insert_results(image, layer, canvas, result)
        remember_inpaint(task.mode, config, result)  # for Repeat Last Inpaint
    except InlayerError as error:
        return _failure(procedure, str(error))
    except Exception as error:  # a bug: still a message, with the details on stderr
        traceback.print_exc()
        message = f"Inlayer failed unexpectedly ({type(error).__name__}: {error})."
        return _failure(procedure, message + untested_note(Gimp.version()))
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _failure(procedure, message: str):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def add_arguments(procedure: Gimp.ImageProcedure, task: Task) -> None:
    flags = GObject.ParamFlags.READWRITE
    for argument in (*arguments_for(task.mode), *guide_arguments(task.mode)):
        name, label, blurb = argument.name, argument.label, argument.blurb
        if isinstance(argument, TextArgument):
            procedure.add_string_argument(name, label, blurb, "", flags)
        elif isinstance(argument, IntArgument):
            procedure.add_int_argument(
                name, label, blurb, argument.minimum, argument.maximum, argument.default, flags
            )
        elif isinstance(argument, FloatArgument):
            procedure.add_double_argument(
                name, label, blurb, argument.minimum, argument.maximum, argument.default, flags
            )
        elif isinstance(argument, ChoiceArgument):
            choice = Gimp.Choice.new()
            for index, option in enumerate(argument.choices):
                choice.add(option.nick, index, option.label, "")
            procedure.add_choice_argument(name, label, blurb, choice, argument.default, flags)
    for layer_argument in layer_arguments(task.mode):
        procedure.add_layer_argument(
            layer_argument.name, layer_argument.label, layer_argument.blurb, True, flags
        )


class InlayerPlugIn(Gimp.PlugIn):
    def do_query_procedures(self):
        return [*TASKS, REPEAT_PROCEDURE, SERVER_PROCEDURE]

    def do_set_i18n(self, _name):
        return False

    def do_create_procedure(self, name):
        if name == REPEAT_PROCEDURE:
            return create_repeat_procedure(self, MENU_PATH)
        if name == SERVER_PROCEDURE:
            return create_server_procedure(self, MENU_PATH, PLUG_IN_NAME)
        task = TASKS[name]
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_task, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(task.label)
        procedure.add_menu_path(MENU_PATH)
        procedure.set_documentation(task.blurb, task.blurb, name)
        procedure.set_attribution("Inlayer", "Inlayer", "2026")
        add_arguments(procedure, task)
        return procedure


if __name__ == "__main__":
    Gimp.main(InlayerPlugIn.__gtype__, sys.argv)
