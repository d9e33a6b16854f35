"""Filters ▸ Inlayer ▸ Repeat Last Inpaint with a New Seed: the last inpaint's arguments, on the
current selection, with a new seed, and no dialog, so that iterating is one shortcut.

Each inpaint keeps its arguments and the seed it used in a global parasite (`LAST_INPAINT`),
which GIMP saves in the profile's parasiterc: it survives restarts and does not depend on which
image the last inpaint was made in. GIMP's own last values of the inpaint procedure serve less
well: a plug-in cannot read them and override one of them (`WITH_LAST_VALS` takes them all, the
seed included), and after a restart they hand back None for empty texts. The stored values go
through `inlayer_arguments` like any config's, so whatever the parasite holds (a value an older
version stored, an argument added since) becomes valid arguments or the default.

The repeat calls the inpaint procedure itself, non-interactively: the same checks, the same
result layers in one undo step, and it is then the last inpaint in turn.
"""

from __future__ import annotations

import json
import random

from gi.repository import Gimp, GLib
from inlayer_arguments import MAX_SEED, FloatArgument, IntArgument, TextArgument, arguments_for
from inlayer_client.protocol import EditResult, Mode

INPAINT_PROCEDURE = "inlayer-inpaint"
REPEAT_PROCEDURE = "inlayer-inpaint-repeat"
REPEAT_LABEL = "_Repeat Last Inpaint with a New Seed"
REPEAT_BLURB = "Inpaint the selection again with the last inpaint's settings and a new seed"
LAST_INPAINT = "inlayer-last-inpaint"
_PLAIN = (str, int, float, bool)


def remember_inpaint(mode: Mode, config: Gimp.ProcedureConfig, result: EditResult) -> None:
    """After a successful inpaint: keep its arguments and the seed it used for the repeat."""
    if mode != Mode.INPAINT or not result.images:
        return
    values = {argument.name: config.get_property(argument.name) for argument in arguments_for(mode)}
    stored = {
        "arguments": {name: value for name, value in values.items() if isinstance(value, _PLAIN)},
        "seed": result.images[0].seed,
    }
    data = json.dumps(stored).encode("utf-8")
    Gimp.attach_parasite(Gimp.Parasite.new(LAST_INPAINT, Gimp.PARASITE_PERSISTENT, data))


def last_inpaint() -> dict | None:
    """What the last inpaint stored ({"arguments": {...}, "seed": n}), or None."""
    parasite = Gimp.get_parasite(LAST_INPAINT)
    if parasite is None:
        return None
    try:
        stored = json.loads(bytes(parasite.get_data()).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return stored if isinstance(stored, dict) else None


def new_seed(last: object) -> int:
    """A random seed other than `last`."""
    seed = random.randint(0, MAX_SEED)
    return (seed + 1) % (MAX_SEED + 1) if seed == last else seed


def repeat_arguments(stored: dict) -> dict[str, object]:
    """The inpaint procedure's arguments from what was stored: each sanitised as the procedure's
    own values are; kinds of arguments this module does not know pass through when set."""
    raw = stored.get("arguments")
    raw = raw if isinstance(raw, dict) else {}
    arguments: dict[str, object] = {}
    for argument in arguments_for(Mode.INPAINT):
        value = raw.get(argument.name)
        if isinstance(argument, TextArgument):
            # The property holds the text (a LoRA's NAME:SCALE), not the request's value of it.
            arguments[argument.name] = TextArgument.value_of(argument, value)
        elif isinstance(argument, (IntArgument, FloatArgument)):
            arguments[argument.name] = argument.value_of(value)
        elif isinstance(value, _PLAIN):
            arguments[argument.name] = value
    arguments["seed"] = new_seed(stored.get("seed"))
    return arguments


def run_repeat(procedure, _run_mode, image, drawables, _config, _data):
    stored = last_inpaint()
    if stored is None:
        message = "No inpaint to repeat yet: run Filters ▸ Inlayer ▸ Inpaint Selection first."
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))
    inpaint = Gimp.get_pdb().lookup_procedure(INPAINT_PROCEDURE)
    config = inpaint.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawables)
    for name, value in repeat_arguments(stored).items():
        config.set_property(name, value)
    status = inpaint.run(config).index(0)
    if status == Gimp.PDBStatusType.SUCCESS:
        return procedure.new_return_values(status, GLib.Error())
    return procedure.new_return_values(status, GLib.Error(Gimp.get_pdb().get_last_error()))


def create_repeat_procedure(plug_in: Gimp.PlugIn, menu_path: str) -> Gimp.ImageProcedure:
    procedure = Gimp.ImageProcedure.new(
        plug_in, REPEAT_PROCEDURE, Gimp.PDBProcType.PLUGIN, run_repeat, None
    )
    procedure.set_image_types("RGB*, GRAY*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
    procedure.set_menu_label(REPEAT_LABEL)
    procedure.add_menu_path(menu_path)
    procedure.set_documentation(REPEAT_BLURB, REPEAT_BLURB, REPEAT_PROCEDURE)
    procedure.set_attribution("Inlayer", "Inlayer", "2026")
    return procedure
