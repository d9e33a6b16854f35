"""Inlayer's "Edit with Instruction…" procedure for GIMP: the active layer (or its selected part)
changed as an instruction says ("turn the car into a bicycle"), on an instruction-edit model.

It runs as the other procedures do (`inlayer.run_task`): the same canvas, the same result
layers, masked by the selection when there is one. Its arguments are these; standard library
only, with the `inlayer_client` package installed beside this file.
"""

from __future__ import annotations

from inlayer_arguments import (
    COUNT,
    FEATHER,
    GROW,
    LORA,
    MODEL,
    NEGATIVE_PROMPT,
    PRESET,
    SEED,
    STEPS,
    VAE,
    FloatArgument,
    TextArgument,
)
from inlayer_client.protocol import MAX_IMAGE_GUIDANCE, MAX_PROMPT_CHARS, EditRequest

INSTRUCT_PROCEDURE = "inlayer-edit"
INSTRUCT_LABEL = "_Edit with Instruction..."
INSTRUCT_BLURB = (
    "Change the active layer (only its selected part when there is a selection) as an "
    "instruction says, on an instruction-edit model (InstructPix2Pix)"
)
# The request's prompt, which an instruction-edit model reads as the instruction.
INSTRUCTION = TextArgument(
    "prompt",
    "_Instruction",
    "What to change, said as an instruction: “turn the car into a bicycle”",
    MAX_PROMPT_CHARS,
)
IMAGE_GUIDANCE = FloatArgument(
    "image-guidance",
    "_Image guidance",
    "How closely the result keeps to the layer (1: not at all); raise it when the edit "
    "changes too much, lower it when it changes too little",
    0.0,
    MAX_IMAGE_GUIDANCE,
    EditRequest.image_guidance,
)
INSTRUCT_ARGUMENTS = (
    INSTRUCTION,
    NEGATIVE_PROMPT,
    IMAGE_GUIDANCE,
    PRESET,
    STEPS,
    SEED,
    COUNT,
    MODEL,
    LORA,
    VAE,
    GROW,
    FEATHER,
)
