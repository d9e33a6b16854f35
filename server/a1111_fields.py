"""Every field of AUTOMATIC1111's txt2img, img2img and extras bodies, and what Inlayer does with it.

The one table of them: the A1111 routes check each body against it, and docs/a1111.md is written
from it (`python -m inlayer.server.a1111_fields > docs/a1111.md`; a test keeps the two equal).

- SUPPORTED: the field acts as in A1111.
- NO_OP: the field changes nothing in Inlayer at the values listed (A1111's defaults and what
  clients send); another value is a 422 that says what Inlayer does instead.
- REFUSED: a feature Inlayer lacks: accepted only at its "off" values, else a 422 naming the field
  and what to use instead.

A field no row names is a 422 too: a client is never left believing it got what it asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inlayer.core.client.protocol import InvalidRequest


class Support(enum.Enum):
    SUPPORTED = "supported"
    NO_OP = "no-op"
    REFUSED = "refused"


ANY = None  # `accepted` of a field every value of which is fine


@dataclass(frozen=True)
class FieldRule:
    name: str
    support: Support
    note: str  # what Inlayer does with the field, or instead of it
    accepted: tuple[Any, ...] | None = ANY  # the values a NO_OP / REFUSED field may take


def _supported(name: str, note: str) -> FieldRule:
    return FieldRule(name, Support.SUPPORTED, note)


def _no_op(name: str, accepted: tuple[Any, ...] | None, note: str) -> FieldRule:
    return FieldRule(name, Support.NO_OP, note, accepted)


def _refused(name: str, accepted: tuple[Any, ...], note: str) -> FieldRule:
    return FieldRule(name, Support.REFUSED, note, accepted)


_OFF = (None, False, 0)
_NONE = (None, "", "None")
_HIRES = "the first pass's size: Inlayer's hires fix starts at the model's own size"
_HIRES_SAME = "the hires fix refines with the first pass's (A1111's meaning of 0 or empty)"
_COMMON = (
    _supported(
        "prompt", "weights as in A1111: `(word:1.3)`, `[word]`, `BREAK`; `<lora:NAME:SCALE>` tags"
    ),
    _supported("negative_prompt", "the negative prompt, weighted alike"),
    _supported("seed", "-1 picks a random seed; image i of a batch uses seed + i"),
    _supported("steps", "sampling steps"),
    _supported("cfg_scale", "classifier-free guidance scale"),
    _supported("sampler_name", "a sampler of GET /sdapi/v1/samplers"),
    _supported("sampler_index", "the older name of sampler_name"),
    _supported("scheduler", "a schedule of GET /sdapi/v1/schedulers (Karras ...)"),
    _supported("batch_size", "images per call (batch_size x n_iter in all)"),
    _supported("n_iter", "batches per call"),
    _supported("width", "width of the image in pixels"),
    _supported("height", "height of the image in pixels"),
    _supported("override_settings", "options for this call only (see GET /sdapi/v1/options)"),
    _supported("send_images", "false answers without images"),
    _supported("disable_extra_networks", "true leaves `<lora:...>` tags in the prompt as text"),
    _no_op(
        "override_settings_restore_afterwards",
        ANY,
        "override_settings never change the stored options in Inlayer",
    ),
    _no_op("styles", ((), [], None), "Inlayer has no prompt styles: write them into the prompt"),
    _no_op("subseed", ANY, "read only with subseed_strength, which Inlayer refuses"),
    _refused("subseed_strength", (None, 0, 0.0), "variation seeds: use another seed instead"),
    _no_op("seed_resize_from_h", (None, 0, -1), "Inlayer does not resize seeds"),
    _no_op("seed_resize_from_w", (None, 0, -1), "Inlayer does not resize seeds"),
    _supported(
        "restore_faces",
        "restores the faces of each image with the first face restorer of GET face-restorers",
    ),
    _supported(
        "tiling", "a texture that tiles seamlessly (circular padding); not with a mask (422)"
    ),
    _no_op("do_not_save_samples", ANY, "Inlayer saves nothing on the server"),
    _no_op("do_not_save_grid", ANY, "Inlayer saves nothing on the server"),
    _refused("save_images", _OFF, "Inlayer saves nothing on the server: save the answer"),
    _no_op(
        "eta",
        (None, 1, 1.0),
        "each sampler keeps its standard eta (1 for ancestral samplers, 0 for DDIM)",
    ),
    _no_op("s_min_uncond", (None, 0, 0.0), "Inlayer always runs the negative prompt"),
    _no_op("s_churn", (None, 0, 0.0), "Inlayer's samplers add no churn"),
    _no_op("s_tmax", (None, 0, 0.0), "Inlayer's samplers add no churn"),
    _no_op("s_tmin", (None, 0, 0.0), "Inlayer's samplers add no churn"),
    _no_op("s_noise", (None, 1, 1.0), "Inlayer's samplers use noise 1"),
    _refused("refiner_checkpoint", _NONE, "refiner models are not available"),
    _no_op("refiner_switch_at", ANY, "read only with refiner_checkpoint"),
    _no_op("comments", ANY, "A1111 writes them into the infotext; Inlayer drops them"),
    _no_op("force_task_id", ANY, "GET /sdapi/v1/progress follows the latest call"),
    _refused("infotext", _NONE, "send the parameters as fields (POST png-info reads infotext)"),
    _refused("script_name", _NONE, "Inlayer has no scripts (GET /sdapi/v1/scripts)"),
    _no_op("script_args", ANY, "read only with script_name"),
    _supported(
        "alwayson_scripts",
        "the ControlNet extension's `controlnet` units (see controlnet unit below); any other "
        "always-on script with arguments is a 422",
    ),
)
TXT2IMG_FIELDS: tuple[FieldRule, ...] = (
    *_COMMON,
    _supported(
        "enable_hr",
        "hires fix: generates at the model's size, upscales, refines at full size in tiles",
    ),
    _supported("denoising_strength", "with enable_hr: the refine's strength (default 0.7)"),
    _no_op("firstphase_width", ANY, _HIRES),
    _no_op("firstphase_height", ANY, _HIRES),
    _supported("hr_scale", "with enable_hr: the scale of the result (1 to 8)"),
    _supported(
        "hr_upscaler",
        "with enable_hr: an upscaler model of GET /sdapi/v1/upscalers; Latent and Lanczos scale "
        "bicubically",
    ),
    _no_op("hr_second_pass_steps", _OFF, _HIRES_SAME),
    _supported("hr_resize_x", "with enable_hr and hr_resize_y: the result's width, for hr_scale"),
    _supported("hr_resize_y", "with enable_hr and hr_resize_x: the result's height"),
    _no_op("hr_checkpoint_name", (*_NONE, "Use same checkpoint"), _HIRES_SAME),
    _no_op("hr_sampler_name", (*_NONE, "Use same sampler"), _HIRES_SAME),
    _no_op("hr_scheduler", (*_NONE, "Use same scheduler"), _HIRES_SAME),
    _no_op("hr_prompt", _NONE, _HIRES_SAME),
    _no_op("hr_negative_prompt", _NONE, _HIRES_SAME),
    _refused("firstpass_image", _NONE, "the hires fix always generates its first pass"),
)
IMG2IMG_FIELDS: tuple[FieldRule, ...] = (
    *_COMMON,
    _supported("init_images", "the image to change (the first one)"),
    _supported("denoising_strength", "how much of the image changes"),
    _supported("mask", "the area to repaint: its alpha where it has transparency, else its grey"),
    _supported("mask_blur", "the mask's feather in pixels (outside the mask)"),
    _supported("inpainting_fill", "0 fill, 1 original, 2 latent noise, 3 latent nothing"),
    _supported("inpainting_mask_invert", "1 repaints what the mask leaves out"),
    _no_op(
        "inpaint_full_res",
        ANY,
        "Inlayer always inpaints only the masked area, with context it picks itself",
    ),
    _no_op("inpaint_full_res_padding", ANY, "Inlayer picks the context around the mask itself"),
    _no_op("mask_blur_x", ANY, "mask_blur sets the feather"),
    _no_op("mask_blur_y", ANY, "mask_blur sets the feather"),
    _no_op("mask_round", ANY, "Inlayer keeps the mask's grey levels"),
    _refused(
        "resize_mode",
        (None, 0),
        "Inlayer only resizes the image to width x height (0, just resize): crop or fill it first",
    ),
    _no_op("image_cfg_scale", ANY, "read only by instruct-pix2pix models"),
    _no_op("initial_noise_multiplier", (None, 1, 1.0), "Inlayer starts from unscaled noise"),
    _refused("latent_mask", _NONE, "send the area to repaint as mask"),
    _refused("include_init_images", _OFF, "the init image is what you sent: keep it"),
)
EXTRAS_FIELDS: tuple[FieldRule, ...] = (
    _supported("image", "the image to upscale (extra-single-image)"),
    _supported("imageList", "the images to upscale (extra-batch-images)"),
    _supported("resize_mode", "0 scales by upscaling_resize, 1 to upscaling_resize_w x _h"),
    _supported("upscaling_resize", "the scale factor"),
    _supported("upscaling_resize_w", "the width with resize_mode 1"),
    _supported("upscaling_resize_h", "the height with resize_mode 1"),
    _supported("upscaling_crop", "with resize_mode 1: crop to the aspect ratio, else stretch"),
    _supported(
        "upscaler_1",
        "an upscaler of GET /sdapi/v1/upscalers: Lanczos, Nearest, or an installed model "
        "(upscale_models/)",
    ),
    _no_op("show_extras_results", ANY, "the images are always in the answer"),
    _refused("upscaler_2", _NONE, "one upscaler at a time: upscale again with another"),
    _no_op("extras_upscaler_2_visibility", ANY, "read only with upscaler_2"),
    _no_op("upscale_first", ANY, "Inlayer restores faces after the upscale, whatever its value"),
    _supported(
        "gfpgan_visibility",
        "restores faces with the first face restorer named GFPGAN (else the first listed), "
        "blended by this visibility",
    ),
    _supported(
        "codeformer_visibility",
        "restores faces with the first face restorer named CodeFormer (else the first "
        "listed), blended by this visibility; one of the two visibilities at a time",
    ),
    _supported("codeformer_weight", "CodeFormer's fidelity (0 = most restored, 1 = most kept)"),
)
# The options that change generation, in a call's `override_settings` or stored with POST
# /sdapi/v1/options (a1111_options.py checks their values); any other option is stored and read
# back and changes nothing.
OPTION_FIELDS: tuple[FieldRule, ...] = (
    _supported("sd_model_checkpoint", "the model: a title of GET sd-models (its [hash] ignored)"),
    _supported(
        "sd_vae",
        "a full autoencoder of GET sd-vae (the vae/ folder of a models folder, like A1111's "
        "models/VAE: .safetensors files or diffusers folders), by file name or name, in place "
        "of the model's own; Automatic and None keep the model's own (Inlayer does not look for "
        "one named after the checkpoint); one for another model family is a 422 naming both",
    ),
    _supported(
        "CLIP_stop_at_last_layers",
        "clip skip: the prompt is read from this text encoder layer, counted from the last "
        "(1 = the last), weighted prompts alike; SDXL reads the penultimate one at 1 and 2, as "
        "in A1111; more than the model's text encoder has is a 422",
    ),
    _supported(
        "eta_noise_seed_delta",
        "the noise that samplers adding noise at each step (Euler a, DPM2 a, DPM++ 2M SDE, "
        "LCM ...) draw comes from a generator seeded seed + delta, as in A1111; the initial "
        "noise stays the seed's, and samplers without step noise (Euler, DDIM, DPM++ 2M) are "
        "untouched, as in A1111. Diffusers' pipelines draw both from one generator; Inlayer "
        "hands the run's scheduler a second one (core/sampler_noise.py). Pictures follow A1111's "
        "rule, not its exact pixels: diffusers' samplers and CPU noise differ from A1111's",
    ),
    _supported("samples_format", "the answer's image format: png, jpg or webp"),
)
# A unit of `alwayson_scripts.controlnet.args`, as the ControlNet extension's API and its
# clients (webuiapi's ControlNetUnit, ...) send it (server/a1111_controlnet.py).
_BALANCED = (None, 0, "Balanced")
CONTROLNET_UNIT_FIELDS: tuple[FieldRule, ...] = (
    _supported("enabled", "false skips the unit"),
    _supported("image", "the control image (base64, or {image, mask}); img2img: the init image"),
    _supported("input_image", "the older name of image"),
    _supported("module", "a preprocessor of GET /controlnet/module_list"),
    _supported("model", "a ControlNet of GET /controlnet/model_list"),
    _supported("weight", "the ControlNet's weight (0-2)"),
    _supported("guidance_start", "the fraction of the steps where the control begins"),
    _supported("guidance_end", "the fraction of the steps where it ends"),
    _supported(
        "resize_mode",
        "a control image of another size: 0 / Just Resize stretches it, 1 / Crop and Resize "
        "crops it to the aspect ratio, 2 / Resize and Fill pads it with black",
    ),
    _refused(
        "mask",
        _NONE,
        "unit masks are for inpainting ControlNets, which Inlayer does not run: send the area "
        "to repaint as the img2img mask",
    ),
    _refused(
        "control_mode",
        _BALANCED,
        "Inlayer weighs prompt and ControlNet alike (Balanced): lower the weight instead",
    ),
    _refused("guessmode", (None, 0, False), "the older control_mode: Balanced only"),
    _no_op(
        "pixel_perfect",
        ANY,
        "Inlayer always makes the control map at the resolution the model works at",
    ),
    _no_op("processor_res", ANY, "the control map is made at the working resolution"),
    _no_op("threshold_a", ANY, "Inlayer's canny uses thresholds 100 and 200"),
    _no_op("threshold_b", ANY, "Inlayer's canny uses thresholds 100 and 200"),
    _no_op("guidance", ANY, "superseded by guidance_start and guidance_end"),
    _no_op("lowvram", ANY, "Inlayer manages memory itself"),
    _no_op("low_vram", ANY, "Inlayer manages memory itself"),
    _no_op("hr_option", ANY, "the unit guides the first pass; the hires pass runs without it"),
    _no_op("save_detected_map", ANY, "Inlayer returns the generated images only"),
)
TABLES: dict[str, tuple[FieldRule, ...]] = {
    "txt2img": TXT2IMG_FIELDS,
    "img2img": IMG2IMG_FIELDS,
    "extras": EXTRAS_FIELDS,
    "options": OPTION_FIELDS,
    "controlnet unit": CONTROLNET_UNIT_FIELDS,
}
# The always-on scripts Inlayer runs, by their lower-case names (clients send either case).
ALWAYSON_SCRIPTS = ("controlnet",)


def check_fields(body: Mapping[str, Any], table: tuple[FieldRule, ...], where: str = "") -> None:
    """Refuse (InvalidRequest naming the field, after `where`) what Inlayer would otherwise
    drop silently."""
    rules = {rule.name: rule for rule in table}
    for name, value in body.items():
        rule = rules.get(name)
        if rule is None:
            raise InvalidRequest(
                where + name,
                "is not an AUTOMATIC1111 field Inlayer knows; see docs/a1111.md for the ones "
                "it takes",
            )
        if name == "script_name" and value not in _NONE:
            raise InvalidRequest(name, f"script {value!r} not found: {rule.note}")
        if name == "alwayson_scripts" and isinstance(value, Mapping):
            for script, settings in value.items():
                if str(script).lower() in ALWAYSON_SCRIPTS:
                    continue  # read by its own module
                # An entry without args asks for nothing (some clients always send one).
                if not isinstance(settings, Mapping) or settings.get("args"):
                    raise InvalidRequest(
                        f"alwayson_scripts.{script}",
                        f"always on script {script} not found: {rule.note}",
                    )
            continue
        if rule.accepted is not ANY and value not in rule.accepted:
            shown = ", ".join(repr(ok) for ok in rule.accepted if ok is not None)
            raise InvalidRequest(
                where + name, f"{value!r} is not available ({shown} only): {rule.note}"
            )


def markdown() -> str:
    """docs/a1111.md: the tables above, for people."""
    lines = [
        "# The AUTOMATIC1111 API: what each field does in Inlayer",
        "",
        "Written from `server/a1111_fields.py` by `python -m inlayer.server.a1111_fields`; "
        "do not edit by hand.",
        "",
        "A field is *supported* (it acts as in AUTOMATIC1111), a *no-op* (it changes nothing at "
        "the values shown; another value is a 422), or *refused* (a feature Inlayer lacks: any "
        "value but the ones shown is a 422 naming the field and what to do instead). A field "
        "not listed is a 422 too; so is a `script_name` or an `alwayson_scripts` entry with "
        "arguments other than `controlnet`, as in AUTOMATIC1111 for a script it does not have.",
        "",
        "The *options* are those that change generation, in a call's `override_settings` or "
        "stored with `POST /sdapi/v1/options`; every other option is stored, read back and "
        "changes nothing.",
    ]
    for route, table in TABLES.items():
        lines += ["", f"## {route}", "", "| field | | accepted values | what Inlayer does |"]
        lines.append("| --- | --- | --- | --- |")
        for rule in sorted(table, key=lambda r: r.name):
            accepted = (
                "any"
                if rule.accepted is ANY or rule.support == Support.SUPPORTED
                else ", ".join("null" if ok is None else f"`{ok!r}`" for ok in rule.accepted)
            )
            lines.append(f"| `{rule.name}` | {rule.support.value} | {accepted} | {rule.note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
