"""The Qt binding Krita runs on: PyQt5 in Krita 5, PyQt6 in Krita 6.

Krita imports its binding before any plug-in, so whichever is already loaded is the right one;
importing the other into the same process would load a second Qt. The rest of the plug-in
imports Qt from here only, and spells enums scoped (``Qt.AlignmentFlag.AlignTop``), which both
bindings accept. A Krita whose Python has neither binding cannot run Inlayer: the ImportError
says so, and Krita's Python Plugin Manager shows it beside the plug-in.
"""

from __future__ import annotations

import sys

if "PyQt6" in sys.modules:
    from PyQt6 import QtCore, QtGui, QtWidgets
else:
    try:
        from PyQt5 import QtCore, QtGui, QtWidgets
    except ImportError as missing:
        raise ImportError(
            "Inlayer needs Krita's Qt binding (PyQt5 in Krita 5.2, PyQt6 in Krita 6.0), and "
            "this Krita's Python has neither: install Krita's Python support (on Linux, the "
            "python3-pyqt5 or python3-pyqt6 package) and restart Krita."
        ) from missing

BINDING = QtCore.__name__.split(".")[0]  # "PyQt5" or "PyQt6"
Signal = QtCore.pyqtSignal

__all__ = ["BINDING", "QtCore", "QtGui", "QtWidgets", "Signal", "image_bytes"]


def image_bytes(image: QtGui.QImage) -> bytes:
    """The raw bytes of a QImage (rows padded to `bytesPerLine`)."""
    return image.constBits().asstring(image.sizeInBytes())
