"""The dialog of an Inlayer procedure run from the menu: GIMP's own ProcedureDialog, with the
widgets a person needs to use it without the docs.

- the prompt in a multi-line text box;
- the model picked from the models the server has (asked when the dialog opens). The argument
  stays a name, so scripts and last-used values keep working; a kept name the server no longer
  lists stays in the list, marked;
- without a server, or without a model, one line that says what to do next;
- the seed of the last Inlayer result one click away.

Standard library, `gi` and the Inlayer client only, like the rest of the plug-in.
"""

from __future__ import annotations

import json

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gimp, GimpUi, Gtk  # noqa: E402
from inlayer_arguments import MODEL, PROMPT, SEED, arguments_for, field_label  # noqa: E402
from inlayer_client.http_client import connect  # noqa: E402
from inlayer_client.protocol import InlayerError, Mode, ModelInfo  # noqa: E402
from inlayer_guides import guide_arguments, layer_arguments  # noqa: E402

PARASITE_NAME = "inlayer-parameters"  # what the plug-in attaches to each result layer
DEFAULT_MODEL_LABEL = "Default for this mode"
NO_SERVER_STEP = (
    "The Inlayer server is not running. Start it with  inlayer serve  in a terminal, then open "
    "this dialog again."
)
NO_MODEL_STEP = (
    "No model installed yet: run  inlayer models pull sd15-inpainting  in a terminal, then open "
    "this dialog again. (Fill Selection works without one.)"
)
PROMPT_FRAME, PROMPT_TITLE = "inlayer-prompt-frame", "inlayer-prompt-title"  # dialog ids
PROMPT_HEIGHT = 72  # px: about four lines
MODEL_COLUMNS = (str, str)  # the name a request takes, the text the list shows


def run_dialog(
    procedure: Gimp.Procedure,
    mode: Mode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    program_name: str,
) -> bool:
    """Show `procedure`'s dialog on `config`; True when the person pressed OK."""
    GimpUi.init(program_name)
    dialog = build_dialog(procedure, mode, image, drawables, config)
    accepted = dialog.run()
    dialog.destroy()
    return bool(accepted)


def build_dialog(
    procedure: Gimp.Procedure,
    mode: Mode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
) -> GimpUi.ProcedureDialog:
    """`procedure`'s dialog on `config`, filled, not yet shown (GimpUi is initialised)."""
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config)
    shown = [argument.name for argument in arguments_for(mode)]
    shown += [argument.name for argument in (*layer_arguments(mode), *guide_arguments(mode))]
    first_rows: list[Gtk.Widget] = []
    if PROMPT.name in shown:
        # A prompt is a sentence or two: a text box, not a one-line entry, framed under its label.
        text_view = dialog.get_widget(PROMPT.name, Gtk.TextView.__gtype__)
        text_view.set_wrap_mode(Gtk.WrapMode.WORD_CHAR)
        text_view.set_size_request(-1, PROMPT_HEIGHT)
        dialog.get_label(PROMPT_TITLE, field_label(PROMPT.label), False, False)
        dialog.fill_frame(PROMPT_FRAME, PROMPT_TITLE, False, PROMPT.name)
        shown[shown.index(PROMPT.name)] = PROMPT_FRAME
    if MODEL.name in shown:
        models, error = _installed_models(mode)
        if error is not None:
            first_rows.append(_note(NO_SERVER_STEP))  # the name can still be typed meanwhile
        else:
            if not models:
                first_rows.append(_note(NO_MODEL_STEP))
            first_rows.append(_model_row(config, models))
            shown.remove(MODEL.name)
    last_seed = _last_result_seed(image, drawables)
    dialog.fill(shown)
    content = dialog.get_content_area()
    for position, row in enumerate(first_rows):
        content.pack_start(row, False, False, 0)
        content.reorder_child(row, position)
    if last_seed is not None:
        content.pack_start(_seed_button(config, *last_seed), False, False, 0)
    content.show_all()
    return dialog


def _installed_models(mode: Mode) -> tuple[list[ModelInfo], InlayerError | None]:
    """The server's models that serve `mode`, or the error that says why there is no list."""
    try:
        models = connect().models()
    except InlayerError as error:
        return [], error
    return [model for model in models if mode.value in model.modes], None


def _note(text: str) -> Gtk.Label:
    label = Gtk.Label(label=text, xalign=0.0)
    label.set_line_wrap(True)
    label.set_max_width_chars(60)
    label.set_selectable(True)  # the command can be copied
    return label


def _model_row(config: Gimp.ProcedureConfig, models: list[ModelInfo]) -> Gtk.Box:
    """A labelled list of the models, bound to the config's model name."""
    store = Gtk.ListStore(*MODEL_COLUMNS)
    store.append(["", DEFAULT_MODEL_LABEL])
    for model in models:
        store.append([model.name, f"{model.name} ({model.family})"])
    kept = (config.get_property(MODEL.name) or "").strip()  # None: kept empty
    if kept and kept not in {model.name for model in models}:
        store.append([kept, f"{kept} (not on the server)"])
    combo = GimpUi.prop_string_combo_box_new(config, MODEL.name, store, 0, 1)
    combo.set_tooltip_text(MODEL.blurb)
    label = Gtk.Label(label=MODEL.label, use_underline=True, xalign=0.0)
    label.set_mnemonic_widget(combo)
    row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
    row.pack_start(label, False, False, 0)
    row.pack_start(combo, True, True, 0)
    return row


def _last_result_seed(image: Gimp.Image, drawables: list[Gimp.Drawable]) -> tuple[int, str] | None:
    """The seed and layer name of the selected Inlayer result, else of the topmost one."""
    for layer in [*drawables, *image.get_layers()]:
        parasite = layer.get_parasite(PARASITE_NAME)
        if parasite is None:
            continue
        try:
            seed = json.loads(bytes(parasite.get_data()).decode("utf-8")).get("seed")
        except (UnicodeDecodeError, ValueError, AttributeError):
            continue  # not written by this plug-in: look further
        if isinstance(seed, int) and SEED.minimum <= seed <= SEED.maximum:
            return seed, layer.get_name()
    return None


def _seed_button(config: Gimp.ProcedureConfig, seed: int, layer_name: str) -> Gtk.Button:
    button = Gtk.Button(label=f"Use seed {seed} of “{layer_name}”")
    button.set_tooltip_text("Set Seed to the seed of that result, to redo it with other settings")
    button.connect("clicked", lambda _button: config.set_property(SEED.name, seed))
    return button
