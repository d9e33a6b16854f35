"""Inlayer's inference core.

Importing `core` must stay cheap and free of torch: the plug-ins' embedded Python imports
`core.protocol` and `core.client`, and the heavy modules (`engine`, `models`, `geometry`) load
only when first used.
"""

__version__ = "0.1.0"
