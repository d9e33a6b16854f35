"""Runs inside real GIMP 3 with its interface (under Xvfb): builds the dialog each Inlayer
procedure shows in interactive mode, with the plug-in's own dialog code, and writes what it found
(the arguments, their defaults, the dialog's widgets and lists) as JSON to the path in
`INLAYER_GIMP_DIALOGS`. With `INLAYER_GIMP_SCREENSHOTS` set to a folder, each dialog is also
shown and saved there as `gimp-<procedure>.png`. GTK reports widget problems on stderr, under the
program name passed to `GimpUi.init`, which test_gimp.py looks for.
"""

import json
import os
import sys
import time

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, Gimp, GimpUi, GObject, Gtk  # noqa: E402

# The plug-in's own modules, as installed in the profile.
sys.path.insert(0, os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "inlayer"))
from inlayer_client.protocol import Mode  # noqa: E402
from inlayer_dialog import PARASITE_NAME, build_dialog  # noqa: E402

PROCEDURES = {
    "inlayer-inpaint": Mode.INPAINT,
    "inlayer-img2img": Mode.IMG2IMG,
    "inlayer-txt2img": Mode.TXT2IMG,
    "inlayer-fill": Mode.FILL,
    "inlayer-edit": Mode.EDIT,
    "inlayer-upscale": Mode.UPSCALE,
    "inlayer-restore": Mode.RESTORE,
}
SCREENSHOTS = os.environ.get("INLAYER_GIMP_SCREENSHOTS", "")
TYPED_LORA = os.environ.get("INLAYER_GIMP_TYPE_LORA", "")  # typed into the LoRA entry when set
LAST_SEED = 1234  # the seed of the Inlayer result the image below holds


def default_of(spec):
    value = spec.get_default_value()
    if value is None and spec.value_type == GObject.TYPE_STRING:
        return ""  # GLib keeps an empty default text as NULL
    return value if isinstance(value, (int, float, str, type(None))) else str(value)


def widgets_under(widget):
    """The type names of `widget` and everything inside it."""
    names = [type(widget).__name__]
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            names += widgets_under(child)
    return names


def texts_under(widget):
    """The texts of the labels and buttons in `widget`."""
    texts = []
    if isinstance(widget, (Gtk.Label, Gtk.Button)) and widget.get_label():
        texts.append(widget.get_label())
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            texts += texts_under(child)
    return texts


def combos_under(widget):
    combos = [widget] if isinstance(widget, Gtk.ComboBox) else []
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            combos += combos_under(child)
    return combos


def lists_under(widget):
    """The names each list (combo box) in `widget` offers, by the tooltip of its argument."""
    lists = {}
    if isinstance(widget, Gtk.ComboBox) and widget.get_model() is not None:
        lists[widget.get_tooltip_text() or ""] = [row[0] for row in widget.get_model()]
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            lists.update(lists_under(child))
    return lists


def image_with_a_result():
    """An image whose top layer is an Inlayer result, as the plug-in leaves one."""
    image = Gimp.Image.new(320, 240, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(
        image,
        "a lighthouse (seed 1234)",
        320,
        240,
        Gimp.ImageType.RGBA_IMAGE,
        100.0,
        Gimp.LayerMode.NORMAL,
    )
    image.insert_layer(layer, None, 0)
    parameters = json.dumps({"mode": "inpaint", "seed": LAST_SEED}).encode()
    layer.attach_parasite(Gimp.Parasite.new(PARASITE_NAME, Gimp.PARASITE_PERSISTENT, parameters))
    return image, layer


def save_window(dialog, path):
    """Show `dialog`, let GTK draw it, and save what it shows as a PNG."""
    dialog.show_all()
    for _ in range(40):  # a few frames: the first draws only part of it
        while Gtk.events_pending():
            Gtk.main_iteration()
        time.sleep(0.05)
    window = dialog.get_window()
    pixbuf = Gdk.pixbuf_get_from_window(window, 0, 0, window.get_width(), window.get_height())
    pixbuf.savev(path, "png", [], [])


GimpUi.init("inlayer-dialogs")
image, result_layer = image_with_a_result()
found = {}
for name, mode in PROCEDURES.items():
    procedure = Gimp.get_pdb().lookup_procedure(name)
    if procedure is None:
        found[name] = None
        continue
    specs = procedure.get_arguments()
    config = procedure.create_config()
    dialog = build_dialog(procedure, mode, image, [result_layer], config)
    found[name] = {
        "arguments": [spec.name for spec in specs],
        # run-mode, image and drawables come first and are filled in by GIMP.
        "defaults": {spec.name: default_of(spec) for spec in specs[3:]},
        "menu_paths": procedure.get_menu_paths(),
        "menu_label": procedure.get_menu_label(),
        "image_types": procedure.get_image_types(),
        "widgets": widgets_under(dialog.get_content_area()),
        "texts": texts_under(dialog.get_content_area()),
        "lists": lists_under(dialog.get_content_area()),
    }
    if TYPED_LORA and name == "inlayer-inpaint":
        # Type into the LoRA list's entry, as a person adds a scale: the argument follows.
        entry = next(
            combo.get_child()
            for combo in combos_under(dialog.get_content_area())
            if combo.get_has_entry()
        )
        entry.set_text(TYPED_LORA)
        found[name]["lora_after_typing"] = config.get_property("lora")
    if SCREENSHOTS:
        save_window(dialog, os.path.join(SCREENSHOTS, f"gimp-{name}.png"))
    dialog.destroy()
with open(os.environ["INLAYER_GIMP_DIALOGS"], "w") as output:
    json.dump(found, output)
