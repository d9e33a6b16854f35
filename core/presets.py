"""Presets: what a request's unset fields become, as one `Recipe` the engine runs.

- `quality`: today's behaviour. The model's own scheduler, 20 steps, guidance 7, the full
  autoencoder, only the request's LoRAs.
- `fast`: a few-step run. A distilled model (LCM, SD-Turbo, Lightning, ...) runs as it wants
  (`few_step.py`); an ordinary one gets the installed speed LoRA of its family (LCM-LoRA, ...).
  Then that piece's scheduler and steps, guidance off, and the tiny autoencoder of the family
  where one is installed.

A request names a preset or leaves it to the device: `fast` on a CPU where its pieces are
installed, else `quality`, with a one-line hint on a CPU of how to get them. The request's own
fields (`steps`, `guidance`, `scheduler`, `vae`, `loras`) always win over the preset's. A
distilled model runs with its own scheduler, steps and guidance whatever the preset: 20 steps
with guidance 7 would only spoil its pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .client.protocol import VAE_FULL, EditRequest, InvalidRequest, Mode, Preset
from .few_step import FewStepSettings
from .full_vae import FullVaeFile, check_fits, find_full_vae
from .loras import ActiveLora, LoraFile, active_loras_parameters, find_loras, resolve_loras
from .tiny_vae import TinyVaeFile, find_tiny_vaes, resolve_tiny_vae

if TYPE_CHECKING:
    from .model_files import ModelCatalog
    from .models import LoadedModel

QUALITY_STEPS = 20
QUALITY_GUIDANCE = 7.0
SPEED_LORA_NAMES = {"sd15": "lcm-lora-sd15", "sdxl": "lcm-lora-sdxl"}  # `models pull` names


@dataclass(frozen=True)
class Recipe:
    """How a run goes, every choice made: the preset's values under the request's own."""

    preset: Preset
    steps: int
    guidance: float
    scheduler: str  # "" = the model's own
    loras: tuple[ActiveLora, ...]  # the request's, then the preset's speed LoRA
    vae: TinyVaeFile | None  # None = the model's own autoencoder
    preview_vae: TinyVaeFile | None  # decodes previews; None = the linear latent preview
    hint: str = ""  # one line for the user, e.g. how to get the fast preset's pieces
    full_vae: FullVaeFile | None = None  # a full autoencoder in place of the model's own

    def autoencoder_name(self) -> str:
        """The autoencoder the run encodes and decodes with, as a request's `vae` names it."""
        chosen = self.vae or self.full_vae
        return chosen.name if chosen is not None else VAE_FULL

    def parameters(self) -> dict[str, Any]:
        """The choices as a result records them, so that they reproduce the run."""
        return {
            "preset": self.preset.value,
            "steps": self.steps,
            "guidance": self.guidance,
            "scheduler": self.scheduler,
            "loras": active_loras_parameters(self.loras),
            "vae": self.autoencoder_name(),
        }


@dataclass(frozen=True)
class SpeedPiece:
    """What makes a run few-step: the model itself, or a speed LoRA added to it."""

    settings: FewStepSettings
    lora: LoraFile | None  # None: the model is distilled


def speed_piece(
    model: LoadedModel, request_loras: tuple[ActiveLora, ...], installed: list[LoraFile]
) -> SpeedPiece | None:
    """The distilled model, a speed LoRA the request has, or an installed one that fits."""
    if model.few_step is not None:
        return SpeedPiece(model.few_step, None)
    for lora in request_loras:
        if lora.file.speed is not None:
            return SpeedPiece(lora.file.speed, None)  # the request has it already
    fitting = [
        lora
        for lora in installed
        if lora.speed is not None and lora.width == model.cross_attention_dim
        and (not lora.second_text_encoder or model.info.family == "sdxl")
    ]  # fmt: skip
    # LCM-LoRA first: it works at any step count, the others were distilled for theirs.
    fitting.sort(key=lambda lora: (lora.speed is None or lora.speed.kind != "lcm", lora.name))
    return SpeedPiece(fitting[0].speed, fitting[0]) if fitting else None  # type: ignore[arg-type]


def missing_pieces_hint(family: str, has_tiny_vae: bool) -> str:
    """How to get the pieces the fast preset lacks for a model of `family`."""
    pulls = [SPEED_LORA_NAMES.get(family, "sd-turbo")]
    if not has_tiny_vae:
        pulls.append("taesdxl" if family == "sdxl" else "taesd")
    return " and ".join(f"`inlayer models pull {name}`" for name in pulls)


def recipe_for(request: EditRequest, model: LoadedModel, catalog: ModelCatalog) -> Recipe:
    """The recipe of `request` on `model` (loaded on `model.device`), with the LoRAs and tiny
    autoencoders the catalog finds."""
    request_loras = resolve_loras(request.loras, catalog, model.info, model.cross_attention_dim)
    tiny_vaes = [tiny for tiny in find_tiny_vaes(catalog) if tiny.fits(model.info)]
    speed = speed_piece(model, request_loras, find_loras(catalog))
    hint = ""
    if request.preset:
        preset = Preset(request.preset)
        if preset == Preset.FAST and speed is None:
            raise InvalidRequest(
                "preset",
                f"fast needs a distilled model or a speed LoRA for {model.info.family}, and none "
                f"is installed for {model.info.name}; get one with "
                + missing_pieces_hint(model.info.family, has_tiny_vae=True),
            )
    elif model.device == "cpu" and speed is not None:
        preset = Preset.FAST
    else:
        preset = Preset.QUALITY
        if model.device == "cpu":
            hint = (
                "edits on this CPU take minutes; for seconds, install the fast preset's pieces: "
                + missing_pieces_hint(model.info.family, bool(tiny_vaes))
            )

    # A distilled model, or a speed LoRA the request brings, runs as it wants whatever the
    # preset; the fast preset brings the installed speed LoRA to an ordinary model.
    loras = request_loras
    if speed is not None and (speed.lora is None or preset == Preset.FAST):
        steps, guidance = speed.settings.steps, speed.settings.guidance
        scheduler = speed.settings.scheduler
        if speed.lora is not None:
            loras = (*request_loras, ActiveLora(speed.lora, 1.0))
    else:
        steps, guidance, scheduler = QUALITY_STEPS, QUALITY_GUIDANCE, ""

    full_vae = None if request.vae in ("", VAE_FULL) else find_full_vae(request.vae, catalog)
    if full_vae is not None:
        check_fits(full_vae, model.info)
    if request.vae == VAE_FULL or full_vae is not None:
        vae = None
    elif request.vae:
        vae = resolve_tiny_vae(request.vae, catalog, model.info)
    elif preset == Preset.FAST and tiny_vaes:
        vae = tiny_vaes[0]
    else:
        vae = None
    if vae is not None and not vae.can_encode and request.mode != Mode.TXT2IMG:
        raise InvalidRequest(
            "vae",
            f"tiny autoencoder {vae.name} has a decoder only (no {vae.name}_encoder file beside "
            f"it), and {request.mode.value} encodes the image; add the encoder or use "
            f"{VAE_FULL!r}",
        )
    return Recipe(
        preset=preset,
        steps=request.steps if request.steps is not None else steps,
        guidance=request.guidance if request.guidance is not None else guidance,
        scheduler=request.scheduler or scheduler,
        loras=loras,
        vae=vae,
        preview_vae=vae or (tiny_vaes[0] if tiny_vaes else None),
        hint=hint,
        full_vae=full_vae,
    )
