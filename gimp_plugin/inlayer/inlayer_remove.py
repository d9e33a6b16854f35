"""Filters ▸ Inlayer ▸ Remove Selection: take out what the selection covers, filled from its
surroundings by the server's object remover (LaMa where installed, else the weight-free fill).

One click: no dialog and no prompt, since there is nothing to choose but the selection; the
result is a new layer with the selection as its mask, like every other procedure's. The grow and
feather are the server's defaults; scripts may pass their own.
"""

from __future__ import annotations

from inlayer_client.protocol import Mode

REMOVE_PROCEDURE = "inlayer-remove"
REMOVE_LABEL = "_Remove Selection"
REMOVE_BLURB = (
    "Remove what the selection covers, filling it from its surroundings (LaMa where the "
    "server has it); no prompt"
)
# Procedures that run at once, without a dialog, even when run interactively.
ONE_CLICK_MODES = (Mode.REMOVE, Mode.SELECT)
