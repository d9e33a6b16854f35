"""The first start of Krita after installing Inlayer: the docker is shown, with one line saying
where Inlayer lives, so that nobody has to look for it. Once per profile (kept in kritarc)."""

from __future__ import annotations

from krita import Krita, Window

from .docker import InlayerDocker
from .docker_settings import GROUP

SHOWN_KEY = "first_start_shown"  # in kritarc's Inlayer group, beside the docker's settings
WHERE = (
    "Inlayer lives in this docker (Settings ▸ Dockers ▸ Inlayer shows or hides it) and under "
    "Tools ▸ Scripts ▸ Inlayer, whose actions can get shortcuts in Settings ▸ Configure Krita ▸ "
    "Keyboard Shortcuts."
)


def show_where_inlayer_is(window: Window) -> None:
    """On the profile's first start with Inlayer: show the docker of `window`, with `WHERE`."""
    krita = Krita.instance()
    if krita.readSetting(GROUP, SHOWN_KEY, "") == "true":
        return
    dockers = [docker for docker in window.dockers() if isinstance(docker, InlayerDocker)]
    if not dockers:
        return
    dockers[0].setVisible(True)
    dockers[0].raise_()
    dockers[0].show_message(WHERE)
    krita.writeSetting(GROUP, SHOWN_KEY, "true")
