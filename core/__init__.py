"""Inlayer's inference core (`inlayer.core`).

`inlayer.core.client` is the standard-library client the plug-ins carry; everything else here may
need numpy, torch and diffusers. Importing `inlayer.core` stays cheap and free of torch: the heavy
modules (`engine`, `models`, `geometry`) load only when first used.
"""

from .client import __version__

__all__ = ["__version__"]
