"""Prompt weights in AUTOMATIC1111's syntax, encoded by compel (step 4: the prompt embeddings).

What A1111 and ComfyUI users write:
- ``(word:1.3)`` weighs ``word`` 1.3; ``(word)`` 1.1; ``[word]`` 1/1.1; nesting multiplies;
- ``\\(`` and ``\\)`` (and ``\\[``, ``\\]``) are the characters themselves;
- ``BREAK`` starts a new 77-token chunk;
- a prompt longer than 77 tokens is encoded in chunks of 77, not cut.

A prompt with none of these is passed to the pipeline as text, exactly as before, so its image
does not change. The others become weighted fragments that compel turns into embeddings (its
own prompt syntax is not used: the fragments go to its embeddings provider).

Clip skip (a request's `clip_skip`, A1111's `CLIP_stop_at_last_layers`) reads the prompt from an
earlier layer of the text encoder, counted from the last as A1111 counts it, normalized as in
A1111 and diffusers for SD 1.5 and 2.x and as it is for SDXL. A prompt with clip skip goes through
compel too, even without weights: diffusers' own `clip_skip` reaches for `text_model`, which
transformers 5's CLIP text model no longer has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .client.protocol import InvalidRequest

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


def _is_xl(pipe: DiffusionPipeline) -> bool:
    return getattr(pipe, "text_encoder_2", None) is not None


def _default_layer(pipe: DiffusionPipeline) -> int:
    """The layer, counted from the last, that the pipelines read a prompt from."""
    return 2 if _is_xl(pipe) else 1


def prompt_layer(pipe: DiffusionPipeline, clip_skip: int) -> int:
    """The text encoder layer, counted from the last (1), that a prompt is read from. SDXL
    reads the penultimate one at clip skip 1 and 2 alike, as in A1111."""
    layer = max(clip_skip, 2) if _is_xl(pipe) else clip_skip
    encoders = (pipe.text_encoder, getattr(pipe, "text_encoder_2", None))
    layers = min(int(e.config.num_hidden_layers) for e in encoders if e is not None)
    if layer > layers:
        raise InvalidRequest(
            "clip_skip",
            f"{clip_skip} reads layer {layer} from the last, but this model's text encoder has "
            f"{layers} layers; use 1 … {layers}",
        )
    return layer


def _read_layer(compel: Any, layer: int, *, normalized: bool) -> None:
    """Make compel's embeddings provider read hidden layer `layer` from the last (compel knows
    only the last and the penultimate), normalized as diffusers' SD pipelines do for clip skip
    and not for SDXL, whose penultimate layer diffusers passes on as it is."""
    provider = compel.conditioning_provider
    text_encoder = provider.text_encoder
    # transformers 5 puts the final norm on the model; earlier versions on its `text_model`.
    final_norm = getattr(text_encoder, "text_model", text_encoder).final_layer_norm

    def encode(token_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        output = text_encoder(
            token_ids, attention_mask, output_hidden_states=True, return_dict=True
        )
        hidden = output.hidden_states[-layer]
        return final_norm(hidden) if normalized else hidden

    # The one method compel reads a chunk's embeddings through (its "returned embeddings type").
    provider._encode_token_ids_to_embeddings = encode


def _compel(pipe: DiffusionPipeline, *, second: bool, layer: int):
    from compel import Compel, ReturnedEmbeddingsType

    xl = _is_xl(pipe)
    compel = Compel(
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
    if layer != _default_layer(pipe):
        _read_layer(compel, layer, normalized=not xl)
    return compel


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


def weighted_prompt_arguments(
    pipe: DiffusionPipeline, arguments: dict[str, Any], clip_skip: int = 1
) -> dict[str, Any]:
    """`arguments` with the prompts as embeddings where they need weights or `clip_skip` asks
    for another layer than the pipeline reads; else unchanged (the prompts as text)."""
    import torch

    layer = prompt_layer(pipe, clip_skip)
    prompt, negative = arguments["prompt"], arguments["negative_prompt"] or ""
    if layer == _default_layer(pipe) and not needs_weighting(pipe, prompt, negative):
        return arguments
    rest = {k: v for k, v in arguments.items() if k not in ("prompt", "negative_prompt")}
    with torch.no_grad():
        first = _compel(pipe, second=False, layer=layer)
        positive, negative_embeds = first.pad_conditioning_tensors_to_same_length(
            [_embed(first, prompt), _embed(first, negative)]
        )
        if getattr(pipe, "text_encoder_2", None) is None:
            return rest | {"prompt_embeds": positive, "negative_prompt_embeds": negative_embeds}
        second = _compel(pipe, second=True, layer=layer)
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
