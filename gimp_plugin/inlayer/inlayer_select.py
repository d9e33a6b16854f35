"""Filters ▸ Inlayer ▸ Select Subject: the subject of the active layer (looked for under the
selection when there is one) becomes the image's selection, to start an edit from ("change the
car"). The layers are left as they were.

One click, no dialog: the server's subject selection has nothing to choose (OpenCV's GrabCut,
quick on a CPU). Its answer is a layer, the source's pixels with the subject as alpha;
`inlayer.run_task` adds it for a moment and `select_by_alpha` turns that alpha into the
selection, inside the same undo group, so one Undo gives the old selection back.
"""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

SELECT_PROCEDURE = "inlayer-select-subject"
SELECT_LABEL = "Select _Subject"
SELECT_BLURB = (
    "Select the subject of the active layer (the one under the selection when there is one); "
    "the selection is replaced, the layers are not touched"
)


def select_by_alpha(image: Gimp.Image, source: Gimp.Layer, cut_out: Gimp.Layer) -> None:
    """Replace the image's selection by the alpha of `cut_out`, then remove `cut_out` and make
    `source` the selected layer again."""
    Gimp.context_push()  # the selection as the alpha says: not feathered by the user's settings
    try:
        Gimp.context_set_feather(False)
        Gimp.context_set_antialias(False)
        image.select_item(Gimp.ChannelOps.REPLACE, cut_out)
    finally:
        Gimp.context_pop()
    image.remove_layer(cut_out)
    image.set_selected_layers([source])
