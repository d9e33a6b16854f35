"""Putting Inlayer on a user's machine: the GIMP and Krita plug-ins into the editors' profiles
(`plugins.py`), the Krita zip, and the `inlayer install-plugins` / `inlayer models pull` commands
(`cli.py`).

This package is not called `packaging` because that name belongs to the PyPI library pytest and
transformers import: a top-level `packaging` of ours would shadow it.
"""
