"""Prompt weights in AUTOMATIC1111's syntax, encoded by compel (step 4: the prompt embeddings).

What A1111 and ComfyUI users write:
- ``(word:1.3)`` weighs ``word`` 1.3; ``(word)`` 1.1; ``[word]`` 1/1.1; nesting multiplies;
- ``\\(`` and ``\\)`` (and ``\\[``, ``\\]``) are the characters themselves;
- ``BREAK`` starts a new 77-token chunk;
- a prompt longer than 77 tokens is encoded in chunks of 77, not cut.

A prompt with none of these is passed to the pipeline as text, exactly as before, so its image
does not change. The others become weighted fragments that compel turns into embeddings (its
own prompt syntax is not used: the fragments go to its embeddings provider).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

ROUND_BRACKET_WEIGHT = 1.1
SQUARE_BRACKET_WEIGHT = 1 / 1.1
# What makes a prompt a weighted one (an escaped bracket too: it has to lose its backslash).
_WEIGHT_SYNTAX = re.compile(r"[()\[\]]|\bBREAK\b")
# A prompt's pieces: an escaped character, a bracket, an explicit weight closing a round
# bracket (":1.3)"), or a run of plain text.
_PIECE = re.compile(r"\\[()\[\]\\]|\(|\[|:\s*([+-]?\d*\.?\d+)\s*\)|\)|\]|[^\\()\[\]:]+|[:\\]")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


@dataclass(frozen=True)
class Fragment:
    text: str
    weight: float


def parse_weights(prompt: str) -> list[list[Fragment]]:
    """The prompt as chunks (split at BREAK) of weighted fragments. An unclosed bracket weighs
    everything after it, as in A1111; an unmatched closing one is text."""
    pieces: list[list[Any]] = []  # [text, weight]; "BREAK" pieces have weight None
    open_round: list[int] = []  # where each open bracket's text starts in `pieces`
    open_square: list[int] = []

    def weigh_from(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if piece[1] is not None:
                piece[1] *= factor

    for match in _PIECE.finditer(prompt):
        token, explicit = match.group(0), match.group(1)
        if token.startswith("\\") and len(token) == 2:
            pieces.append([token[1], 1.0])
        elif token == "(":
            open_round.append(len(pieces))
        elif token == "[":
            open_square.append(len(pieces))
        elif explicit is not None and open_round:
            weigh_from(open_round.pop(), float(explicit))
        elif token == ")" and open_round:
            weigh_from(open_round.pop(), ROUND_BRACKET_WEIGHT)
        elif token == "]" and open_square:
            weigh_from(open_square.pop(), SQUARE_BRACKET_WEIGHT)
        else:
            for index, part in enumerate(_BREAK.split(token)):
                if index:
                    pieces.append(["BREAK", None])
                pieces.append([part, 1.0])
    for start in open_round:
        weigh_from(start, ROUND_BRACKET_WEIGHT)
    for start in open_square:
        weigh_from(start, SQUARE_BRACKET_WEIGHT)

    chunks: list[list[Fragment]] = [[]]
    for text, weight in pieces:
        if weight is None:
            chunks.append([])
        elif text:
            chunk = chunks[-1]
            if chunk and chunk[-1].weight == weight:  # one fragment per run of one weight
                chunk[-1] = Fragment(chunk[-1].text + text, weight)
            else:
                chunk.append(Fragment(text, weight))
    return [chunk or [Fragment("", 1.0)] for chunk in chunks]


def needs_weighting(pipe: DiffusionPipeline, *prompts: str) -> bool:
    """Whether a prompt uses weight syntax or is longer than the text encoder takes at once."""
    tokenizer = pipe.tokenizer
    return any(
        _WEIGHT_SYNTAX.search(prompt)
        or len(tokenizer(prompt, verbose=False).input_ids) > tokenizer.model_max_length
        for prompt in prompts
    )


def _compel(pipe: DiffusionPipeline, *, second: bool):
    from compel import Compel, ReturnedEmbeddingsType

    xl = getattr(pipe, "text_encoder_2", None) is not None
    return Compel(
        tokenizer=pipe.tokenizer_2 if second else pipe.tokenizer,
        text_encoder=pipe.text_encoder_2 if second else pipe.text_encoder,
        # SDXL conditions on the penultimate layer, as diffusers' SDXL pipelines do.
        returned_embeddings_type=(
            ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
            if xl
            else ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED
        ),
        requires_pooled=second,
        truncate_long_prompts=False,
        device=str(pipe._execution_device),
    )


def _embed(compel: Any, prompt: str) -> torch.Tensor:
    """The prompt's embeddings: each BREAK chunk encoded on its own, then joined."""
    import torch

    provider = compel.conditioning_provider
    tensors = [
        provider.get_embeddings_for_weighted_prompt_fragments(
            text_batch=[[f.text for f in chunk]],
            fragment_weights_batch=[[f.weight for f in chunk]],
            device=compel.device,
        )
        for chunk in parse_weights(prompt)
    ]
    return torch.cat(tensors, dim=1)


def _plain_text(prompt: str) -> str:
    return " ".join(f.text for chunk in parse_weights(prompt) for f in chunk)


def weighted_prompt_arguments(pipe: DiffusionPipeline, arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` with the prompts as weighted embeddings where they need them; unchanged (the
    prompts as text) where they do not."""
    import torch

    prompt, negative = arguments["prompt"], arguments["negative_prompt"] or ""
    if not needs_weighting(pipe, prompt, negative):
        return arguments
    rest = {k: v for k, v in arguments.items() if k not in ("prompt", "negative_prompt")}
    with torch.no_grad():
        first = _compel(pipe, second=False)
        positive, negative_embeds = first.pad_conditioning_tensors_to_same_length(
            [_embed(first, prompt), _embed(first, negative)]
        )
        if getattr(pipe, "text_encoder_2", None) is None:
            return rest | {"prompt_embeds": positive, "negative_prompt_embeds": negative_embeds}
        second = _compel(pipe, second=True)
        positive_2, negative_2 = second.pad_conditioning_tensors_to_same_length(
            [_embed(second, prompt), _embed(second, negative)]
        )
        # The tokenizers differ, so their chunkings may too: keep the tokens both encoded.
        positive, positive_2, negative_embeds, negative_2 = _same_length(
            positive, positive_2, negative_embeds, negative_2
        )
        provider = second.conditioning_provider
        return rest | {
            "prompt_embeds": torch.cat([positive, positive_2], dim=-1),
            "negative_prompt_embeds": torch.cat([negative_embeds, negative_2], dim=-1),
            "pooled_prompt_embeds": provider.get_pooled_embeddings([_plain_text(prompt)]),
            "negative_pooled_prompt_embeds": provider.get_pooled_embeddings(
                [_plain_text(negative)]
            ),
        }


def _same_length(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Cut the token axis to the shortest (the encoders' chunkings may differ by a chunk)."""
    shortest = min(t.shape[1] for t in tensors)
    return [t[:, :shortest] for t in tensors]
