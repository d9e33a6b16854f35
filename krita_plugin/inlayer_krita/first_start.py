"""The first start of Krita after installing Inlayer: the first canvas a person opens says, in
Krita's own floating message, where Inlayer is. Nothing is raised or focused, so the document's
active layer stays the one the person picked. Once per profile (kept in kritarc)."""

from __future__ import annotations

from krita import Krita, View

from .docker_settings import GROUP
from .qt import QtCore, QtGui

SHOWN_KEY = "first_start_shown"  # in kritarc's Inlayer group, beside the docker's settings
WHERE = (
    "Inlayer is installed: show its docker with Settings ▸ Dockers ▸ Inlayer. Its actions are "
    "under Tools ▸ Scripts ▸ Inlayer."
)
MESSAGE_MS = 20000  # long enough to read twice
RETRY_MS = (1000, 3000, 6000)  # after a view is created: by the last it is the current one
HIGH_PRIORITY = 0  # KisFloatingMessage::High: not hidden behind Krita's own messages


def show_where_inlayer_is_once() -> None:
    """On the profile's first start with Inlayer, show `WHERE` over the first view opened."""
    krita = Krita.instance()
    if krita.readSetting(GROUP, SHOWN_KEY, "") == "true":
        return

    def show_on_active_view() -> None:
        window = krita.activeWindow()
        view = window.activeView() if window is not None else None
        if view is not None:
            view.showFloatingMessage(WHERE, QtGui.QIcon(), MESSAGE_MS, HIGH_PRIORITY)

    def on_view_created(_view: View) -> None:
        if krita.readSetting(GROUP, SHOWN_KEY, "") == "true":
            return
        krita.writeSetting(GROUP, SHOWN_KEY, "true")
        # Not through `_view`: Krita deletes the View it passes as soon as this handler returns.
        # And not at once: Krita drops a message to a view that is not the current one yet, and
        # the new view becomes current only after the window has activated it, some event-loop
        # turns later (later still on a slow machine). Shown again, the message only stays up
        # longer.
        for delay_ms in RETRY_MS:
            QtCore.QTimer.singleShot(delay_ms, show_on_active_view)

    krita.notifier().viewCreated.connect(on_view_created)
