"""Inlayer's client: everything a plug-in needs to talk to the server, and nothing more.

Standard library only, Python 3.10+: GIMP's and Krita's embedded Python have no numpy, Pillow or
torch. The installer copies this folder whole into each plug-in (as `inlayer_client`), so every
module here imports only the standard library and its neighbours in this folder, relatively.

- `protocol`     the request, result and job-status types every part of Inlayer speaks
- `wire`         their binary envelope over HTTP
- `base`         the `Client` interface and its wait loop, whatever carries the jobs
- `http_client`  the HTTP client (`connect()`), which checks the server's protocol version
- `bounds`       rectangles, and which part of a layer a request needs
- `canvas`       the editor-independent half of reading a canvas: what to read for a request
- `paths`        where Inlayer keeps its per-user files on each platform
"""

__version__ = "0.1.0"
