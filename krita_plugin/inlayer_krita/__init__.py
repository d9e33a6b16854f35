"""Inlayer for Krita: local AI inpainting, transforms and generation as new layers.

Krita loads this package at start-up; it registers the docker and the menu actions. Scripts use
`inlayer_krita.api`. In a Krita it does not support it registers nothing and says why, once
Krita's window is up; in an untested Krita it says so once per version (editor_support.py).
"""

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from .editor_support import refusal, untested_notice
from .qt import BINDING, QtCore, QtWidgets

SETTINGS_GROUP = "inlayer"
NOTICE_SHOWN_KEY = "untested_notice_shown_for"


def _tell(text: str) -> None:
    # Deferred: at load time Krita's main window does not exist yet.
    QtCore.QTimer.singleShot(
        0,
        lambda: QtWidgets.QMessageBox.warning(
            QtWidgets.QApplication.activeWindow(), "Inlayer", text
        ),
    )


def _register() -> None:
    krita = Krita.instance()
    version = krita.version()
    refused = refusal(version, BINDING)
    if refused:
        _tell(refused)
        return
    notice = untested_notice(version)
    if notice and krita.readSetting(SETTINGS_GROUP, NOTICE_SHOWN_KEY, "") != version:
        krita.writeSetting(SETTINGS_GROUP, NOTICE_SHOWN_KEY, version)
        _tell(notice)

    # Imported only where Inlayer runs: an older Krita may lack what they use as they load.
    from .docker import DOCKER_ID, InlayerDocker
    from .extension import InlayerExtension

    krita.addExtension(InlayerExtension(krita))
    krita.addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockPosition.DockRight, InlayerDocker)
    )


_register()
