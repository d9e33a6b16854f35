"""The dialog of an Inlayer procedure run from the menu: GIMP's own ProcedureDialog, with the
widgets a person needs to use it without the docs.

- the prompt in a multi-line text box;
- the model picked from the models the server has (asked when the dialog opens), and likewise
  the LoRA and the autoencoder from the add-ons it has (/v1/add-ons). Each argument stays a
  name, so scripts and last-used values keep working; a kept name the server no longer lists
  stays in the list, marked. The LoRA's list has an entry, for a scale written as NAME:SCALE;
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
from inlayer_arguments import (  # noqa: E402
    LORA,
    MODEL,
    PROMPT,
    SEED,
    VAE,
    ListedArgument,
    TextArgument,
    arguments_for,
    field_label,
)
from inlayer_client.http_client import connect  # noqa: E402
from inlayer_client.protocol import (  # noqa: E402
    VAE_FULL,
    VAE_TINY,
    AddOnInfo,
    AddOnKind,
    InlayerError,
    Mode,
    ModelInfo,
)
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
# The autoencoder choices every server has, before the ones it lists.
VAE_WORDS = (
    ("", "The preset's"),
    (VAE_FULL, "The model's own"),
    (VAE_TINY, "Tiny, for the model's family"),
)
VAE_KINDS = {AddOnKind.VAE: "tiny", AddOnKind.FULL_VAE: "full"}


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
        models, add_ons, error = _server_lists(mode)
        if error is not None:
            first_rows.append(_note(NO_SERVER_STEP))  # the names can still be typed meanwhile
        else:
            if not models:
                first_rows.append(_note(NO_MODEL_STEP))
            choices = [(m.name, f"{m.name} ({m.family})") for m in models]
            first_rows.append(_choice_row(config, MODEL, [("", DEFAULT_MODEL_LABEL), *choices]))
            shown.remove(MODEL.name)
            if LORA.name in shown:  # not every procedure with a model takes one (Outpaint, Edit)
                loras = [
                    (a.name, f"{a.name} ({a.family or '?'})")
                    for a in add_ons
                    if a.kind == AddOnKind.LORA
                ]
                first_rows.append(_choice_row(config, LORA, [("", "None"), *loras], entry=True))
                shown.remove(LORA.name)
            if VAE.name in shown:
                vaes = [
                    (a.name, f"{a.name} ({VAE_KINDS[a.kind]}, {a.family or '?'})")
                    for a in add_ons
                    if a.kind in VAE_KINDS
                ]
                first_rows.append(_choice_row(config, VAE, [*VAE_WORDS, *vaes]))
                shown.remove(VAE.name)
    listed = [argument for argument in arguments_for(mode) if isinstance(argument, ListedArgument)]
    if listed:
        first_rows += _listed_rows(config, listed)
        shown = [name for name in shown if name not in {argument.name for argument in listed}]
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


def _server_lists(
    mode: Mode,
) -> tuple[list[ModelInfo], list[AddOnInfo], InlayerError | None]:
    """The server's models that serve `mode` and its add-ons (LoRAs, autoencoders), or the
    error that says why there are no lists."""
    try:
        client = connect()
        models, add_ons = client.models(), client.add_ons()
    except InlayerError as error:
        return [], [], error
    return [model for model in models if mode.value in model.modes], add_ons, None


def _listed_rows(config: Gimp.ProcedureConfig, listed: list[ListedArgument]) -> list[Gtk.Widget]:
    """A list per argument of the files the server has of its kinds (upscalers, face
    restorers, repair models); without a server, a note and a text entry per argument."""
    try:
        client = connect()
        add_ons, image_models = client.add_ons(), client.image_models()
    except InlayerError:
        entries = [_choice_row(config, argument, [], entry=True) for argument in listed]
        return [_note(NO_SERVER_STEP), *entries]

    def names(argument: ListedArgument) -> list[str]:
        if argument.image_model_field:
            return image_models.get(argument.image_model_field, [])
        return [a.name for a in add_ons if a.kind in argument.kinds]

    return [
        _choice_row(config, argument, [*argument.fixed, *[(n, n) for n in names(argument)]])
        for argument in listed
    ]


def _note(text: str) -> Gtk.Label:
    label = Gtk.Label(label=text, xalign=0.0)
    label.set_line_wrap(True)
    label.set_max_width_chars(60)
    label.set_selectable(True)  # the command can be copied
    return label


def _choice_row(
    config: Gimp.ProcedureConfig,
    argument: TextArgument,
    choices: list[tuple[str, str]],
    *,
    entry: bool = False,
) -> Gtk.Box:
    """A labelled list of `choices` (the name a request takes, the text shown), bound to the
    config's text `argument`; with `entry`, a list with a text entry, so that what the list
    names can be added to (a LoRA's :SCALE)."""
    kept = (config.get_property(argument.name) or "").strip()  # None: kept empty
    names = {name for name, _ in choices}
    if kept and kept not in names and not (entry and kept.rpartition(":")[0] in names):
        choices = [*choices, (kept, f"{kept} (not on the server)")]
    if entry:
        combo = _entry_combo(config, argument, choices, kept)
    else:
        store = Gtk.ListStore(*MODEL_COLUMNS)
        for choice in choices:
            store.append(list(choice))
        combo = GimpUi.prop_string_combo_box_new(config, argument.name, store, 0, 1)
    combo.set_tooltip_text(argument.blurb)
    label = Gtk.Label(label=argument.label, use_underline=True, xalign=0.0)
    label.set_mnemonic_widget(combo)
    row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
    row.pack_start(label, False, False, 0)
    row.pack_start(combo, True, True, 0)
    return row


def _entry_combo(
    config: Gimp.ProcedureConfig,
    argument: TextArgument,
    choices: list[tuple[str, str]],
    kept: str,
) -> Gtk.ComboBox:
    """A list of `choices` with a text entry showing the chosen name, written to the config as
    it changes (GimpUi's property combos have no entry)."""
    store = Gtk.ListStore(*MODEL_COLUMNS)
    for choice in choices:
        store.append(list(choice))
    combo = Gtk.ComboBox.new_with_model_and_entry(store)
    combo.set_entry_text_column(0)  # the list shows the names the entry takes
    entry = combo.get_child()
    entry.set_text(kept)
    entry.connect("changed", lambda e: config.set_property(argument.name, e.get_text().strip()))
    return combo


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
