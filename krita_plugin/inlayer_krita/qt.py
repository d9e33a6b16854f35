"""The Qt binding Krita runs on: PyQt5 in Krita 5, PyQt6 in Krita 6.

Krita imports its binding before any plug-in, so whichever is already loaded is the right one;
importing the other into the same process would load a second Qt. The rest of the plug-in
imports Qt from here only, and spells enums scoped (``Qt.AlignmentFlag.AlignTop``), which both
bindings accept.
"""

from __future__ import annotations

import sys

if "PyQt6" in sys.modules:
    from PyQt6 import QtCore, QtGui, QtWidgets
else:
    from PyQt5 import QtCore, QtGui, QtWidgets

Signal = QtCore.pyqtSignal

__all__ = ["QtCore", "QtGui", "QtWidgets", "Signal", "image_bytes"]


def image_bytes(image: QtGui.QImage) -> bytes:
    """The raw bytes of a QImage (rows padded to `bytesPerLine`)."""
    return image.constBits().asstring(image.sizeInBytes())
