"""Prompt weights in AUTOMATIC1111's syntax: parsed, encoded by compel, run by the engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inlayer.core.client.protocol import EditRequest, InvalidRequest, Mode
from inlayer.core.engine import Engine, image_array
from inlayer.core.models import ModelRegistry
from inlayer.core.prompt_weights import Fragment, parse_weights, weighted_prompt_arguments
from tests.fixtures.models import TINY_SD15, TINY_SDXL


@pytest.mark.parametrize(
    ("prompt", "chunks"),
    [
        ("a red apple", [[Fragment("a red apple", 1.0)]]),
        (
            "a (red:1.3) apple",
            [[Fragment("a ", 1.0), Fragment("red", 1.3), Fragment(" apple", 1.0)]],
        ),
        ("((red))", [[Fragment("red", pytest.approx(1.21))]]),
        ("[red]", [[Fragment("red", pytest.approx(1 / 1.1))]]),
        ("((red):0.5)", [[Fragment("red", pytest.approx(0.55))]]),
        (r"a \(red\)", [[Fragment("a (red)", 1.0)]]),
        ("sky BREAK sea", [[Fragment("sky", 1.0)], [Fragment("sea", 1.0)]]),
        ("(unclosed red", [[Fragment("unclosed red", pytest.approx(1.1))]]),
        ("stray) bracket", [[Fragment("stray) bracket", 1.0)]]),
        ("time: 5", [[Fragment("time: 5", 1.0)]]),
    ],
)
def test_parse_weights_as_a1111_reads_them(prompt: str, chunks: list) -> None:
    assert parse_weights(prompt) == chunks


@pytest.fixture(scope="module")
def registry(tiny_models_dir) -> ModelRegistry:
    return ModelRegistry([tiny_models_dir])


@pytest.mark.parametrize("model", [TINY_SD15, TINY_SDXL])
def test_a_plain_prompt_reaches_the_pipeline_as_text(registry, model) -> None:
    pipe, _ = registry.pipeline(model, Mode.TXT2IMG)
    arguments = {"prompt": "a red apple, blue sky", "negative_prompt": "blurry", "steps": 2}
    assert weighted_prompt_arguments(pipe, arguments) == arguments


def test_weights_change_the_embeddings_and_weight_one_is_the_plain_prompt(registry) -> None:
    pipe, _ = registry.pipeline(TINY_SD15, Mode.TXT2IMG)

    def embeds(prompt: str) -> torch.Tensor:
        return weighted_prompt_arguments(pipe, {"prompt": prompt, "negative_prompt": ""})[
            "prompt_embeds"
        ]

    plain, _ = pipe.encode_prompt("a red apple", "cpu", 1, False)
    assert torch.allclose(embeds("a (red:1.0) apple"), plain, atol=1e-5)
    assert not torch.allclose(embeds("a (red:1.5) apple"), plain, atol=1e-3)
    assert not torch.allclose(embeds("a [red] apple"), plain, atol=1e-3)
    assert embeds("a red apple BREAK sky").shape[1] == 2 * plain.shape[1]
    assert embeds(" ".join(["apple"] * 100)).shape[1] == 2 * plain.shape[1]  # not cut at 77


@pytest.mark.parametrize("model", [TINY_SD15, TINY_SDXL])
def test_weighted_prompts_run_and_change_the_picture(registry, model) -> None:
    engine = Engine(registry)

    def picture(prompt: str, negative: str = "") -> np.ndarray:
        request = EditRequest(
            Mode.TXT2IMG,
            prompt=prompt,
            negative_prompt=negative,
            width=32,
            height=32,
            steps=2,
            seed=5,
            guidance=7.0,
            model=model,
        )
        return image_array(engine.run(request).images[0].image)

    plain = picture("a red apple")
    assert np.array_equal(picture("a red apple"), plain)
    assert not np.array_equal(picture("a (red:1.6) apple"), plain)
    assert not np.array_equal(picture("a red apple BREAK sky", "(blurry:1.2)"), plain)


def test_clip_skip_reads_an_earlier_layer_normalized_with_or_without_weights(registry) -> None:
    pipe, _ = registry.pipeline(TINY_SD15, Mode.TXT2IMG)
    text = {"prompt": "a red apple", "negative_prompt": ""}
    assert weighted_prompt_arguments(pipe, text, clip_skip=1) == text

    def embeds(prompt: str, clip_skip: int) -> torch.Tensor:
        arguments = {"prompt": prompt, "negative_prompt": ""}
        return weighted_prompt_arguments(pipe, arguments, clip_skip)["prompt_embeds"]

    ids = pipe.tokenizer(
        "a red apple", padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        output = pipe.text_encoder(ids, output_hidden_states=True)
        last = output.last_hidden_state  # the last layer's, normalized
        penultimate = pipe.text_encoder.final_layer_norm(output.hidden_states[-2])
    assert not torch.allclose(last, penultimate, atol=1e-3)
    assert torch.allclose(embeds("a red apple", 2), penultimate, atol=1e-5)
    assert torch.allclose(embeds("a (red:1.0) apple", 2), penultimate, atol=1e-5)
    assert torch.allclose(embeds("a (red:1.0) apple", 1), last, atol=1e-5)


def test_clip_skip_beyond_the_text_encoder_is_refused_naming_it(registry) -> None:
    pipe, _ = registry.pipeline(TINY_SDXL, Mode.TXT2IMG)
    text = {"prompt": "a red apple", "negative_prompt": ""}
    # SDXL reads the penultimate layer already: clip skip 2 changes nothing.
    assert weighted_prompt_arguments(pipe, text, clip_skip=2) == text
    with pytest.raises(InvalidRequest) as refused:
        weighted_prompt_arguments(pipe, text, clip_skip=3)  # the tiny encoders have 2 layers
    assert refused.value.field == "clip_skip"
    assert "2 layers" in refused.value.message


def test_clip_skip_changes_the_picture_of_an_engine_run(registry) -> None:
    engine = Engine(registry)

    def picture(clip_skip: int, prompt: str = "a red apple") -> np.ndarray:
        request = EditRequest(
            Mode.TXT2IMG, prompt=prompt, width=32, height=32, steps=2, seed=5,
            guidance=7.0, model=TINY_SD15, clip_skip=clip_skip,
        )  # fmt: skip
        result = engine.run(request)
        assert result.parameters["clip_skip"] == clip_skip
        return image_array(result.images[0].image)

    assert not np.array_equal(picture(2), picture(1))
    assert np.array_equal(picture(2, "a (red:1.0) apple"), picture(2))
