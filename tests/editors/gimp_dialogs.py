"""Runs inside real GIMP 3 with its interface (under Xvfb): builds the dialog each Inlayer
procedure shows in interactive mode, from that procedure's registered arguments, and writes what
it found as JSON to the path in `INLAYER_GIMP_DIALOGS`. GTK reports widget problems on stderr,
under the program name passed to `GimpUi.init`, which test_gimp.py looks for.
"""

import json
import os

from gi.repository import Gimp, GimpUi

PROCEDURES = ("inlayer-inpaint", "inlayer-img2img", "inlayer-txt2img", "inlayer-fill")

GimpUi.init("inlayer-dialogs")
found = {}
for name in PROCEDURES:
    procedure = Gimp.get_pdb().lookup_procedure(name)
    if procedure is None:
        found[name] = None
        continue
    arguments = [argument.name for argument in procedure.get_arguments()]
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=procedure.create_config())
    # The plug-in's dialog shows its own arguments; run-mode, image and drawables come first and
    # are filled in by GIMP.
    dialog.fill(arguments[3:])
    found[name] = {
        "arguments": arguments,
        "menu_paths": procedure.get_menu_paths(),
        "menu_label": procedure.get_menu_label(),
        "image_types": procedure.get_image_types(),
    }
    dialog.destroy()
with open(os.environ["INLAYER_GIMP_DIALOGS"], "w") as output:
    json.dump(found, output)
