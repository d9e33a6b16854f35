"""The docker's Server… dialog: the URL and token of a server on another machine (or none: the
local one). Kept by the client's `remote_server` in Inlayer's config folder, which the GIMP
plug-in reads too."""

from __future__ import annotations

from .inlayer_client.protocol import InlayerError
from .inlayer_client.remote_server import load_remote_server, save_remote_server
from .qt import QtWidgets


class ServerSettingsDialog(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Inlayer server")
        layout = QtWidgets.QVBoxLayout(self)
        note = QtWidgets.QLabel(
            "Leave the URL empty to use the Inlayer server on this computer. For a server on "
            "another machine, enter its address and the token its administrator gave you."
        )
        note.setWordWrap(True)
        layout.addWidget(note)
        form = QtWidgets.QFormLayout()
        stored = load_remote_server()
        self.url_edit = QtWidgets.QLineEdit(stored.url if stored else "")
        self.url_edit.setPlaceholderText("https://inlayer.example.com")
        form.addRow("Server URL", self.url_edit)
        self.token_edit = QtWidgets.QLineEdit(stored.token if stored else "")
        self.token_edit.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        form.addRow("Token", self.token_edit)
        layout.addLayout(form)
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setWordWrap(True)
        layout.addWidget(self.error_label)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Save
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def save(self) -> None:
        """Keep the fields and close; on a wrong field, say which and keep the dialog open."""
        try:
            save_remote_server(self.url_edit.text(), self.token_edit.text())
        except InlayerError as error:
            self.error_label.setText(f"⚠ {error}")
            return
        self.accept()
