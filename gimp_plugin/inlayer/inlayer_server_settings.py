"""Filters ▸ Inlayer ▸ Server Settings…: the URL and token of an Inlayer server on another
machine (a studio's, the GPU box next door), or none: the server on this computer.

The dialog is a plain one rather than GIMP's procedure dialog of arguments: GIMP would keep the
token among the procedure's last values in its profile. The client's `remote_server` keeps both
in Inlayer's config folder, owner-only, where the Krita plug-in reads them too.
"""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gimp, GimpUi, GLib, Gtk  # noqa: E402
from inlayer_client.protocol import InlayerError  # noqa: E402
from inlayer_client.remote_server import load_remote_server, save_remote_server  # noqa: E402

SERVER_PROCEDURE = "inlayer-server-settings"
SERVER_LABEL = "_Server Settings…"
SERVER_BLURB = "Use an Inlayer server on another machine: its URL and your token"
SERVER_NOTE = (
    "Leave the URL empty to use the Inlayer server on this computer. For a server on another "
    "machine, enter its address and the token its administrator gave you."
)


def ask_server(program_name: str) -> bool:
    """The dialog; True once valid settings were saved, False when the person cancelled. A wrong
    field is shown in the dialog, which stays open."""
    GimpUi.init(program_name)
    dialog = GimpUi.Dialog(title="Inlayer server", role="inlayer-server-settings")
    dialog.add_button("_Cancel", Gtk.ResponseType.CANCEL)
    dialog.add_button("_Save", Gtk.ResponseType.OK)
    stored = load_remote_server()
    url_entry = Gtk.Entry(text=stored.url if stored else "", hexpand=True)
    url_entry.set_placeholder_text("https://inlayer.example.com")
    token_entry = Gtk.Entry(text=stored.token if stored else "", visibility=False)
    error_label = Gtk.Label(label="", xalign=0)
    error_label.set_line_wrap(True)
    note = Gtk.Label(label=SERVER_NOTE, xalign=0)
    note.set_line_wrap(True)
    note.set_max_width_chars(60)
    grid = Gtk.Grid(row_spacing=6, column_spacing=12, margin=12)
    grid.attach(note, 0, 0, 2, 1)
    grid.attach(Gtk.Label(label="Server URL", xalign=0), 0, 1, 1, 1)
    grid.attach(url_entry, 1, 1, 1, 1)
    grid.attach(Gtk.Label(label="Token", xalign=0), 0, 2, 1, 1)
    grid.attach(token_entry, 1, 2, 1, 1)
    grid.attach(error_label, 0, 3, 2, 1)
    dialog.get_content_area().pack_start(grid, True, True, 0)
    dialog.show_all()
    saved = False
    while not saved and dialog.run() == Gtk.ResponseType.OK:
        try:
            save_remote_server(url_entry.get_text(), token_entry.get_text())
            saved = True
        except InlayerError as error:
            error_label.set_text(f"⚠ {error}")
    dialog.destroy()
    return saved


def create_server_procedure(
    plug_in: Gimp.PlugIn, menu_path: str, program_name: str
) -> Gimp.ImageProcedure:
    def run(procedure, run_mode, _image, _drawables, _config, _data):
        if run_mode != Gimp.RunMode.INTERACTIVE:
            message = (
                "Server Settings asks in a dialog: run it from the menu (scripts set "
                "INLAYER_SERVER and INLAYER_TOKEN instead)."
            )
            status, error = Gimp.PDBStatusType.CALLING_ERROR, GLib.Error(message)
        elif ask_server(program_name):
            status, error = Gimp.PDBStatusType.SUCCESS, GLib.Error()
        else:
            status, error = Gimp.PDBStatusType.CANCEL, GLib.Error()
        return procedure.new_return_values(status, error)

    procedure = Gimp.ImageProcedure.new(
        plug_in, SERVER_PROCEDURE, Gimp.PDBProcType.PLUGIN, run, None
    )
    procedure.set_image_types("*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
    procedure.set_menu_label(SERVER_LABEL)
    procedure.add_menu_path(menu_path)
    procedure.set_documentation(SERVER_BLURB, SERVER_BLURB, SERVER_PROCEDURE)
    procedure.set_attribution("Inlayer", "Inlayer", "2026")
    return procedure
