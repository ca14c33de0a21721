"""Model families the sampler drives: ``family_of(pipe)`` binds the right one to a loaded pipeline.

| family | pipeline | latents | guidance | RATS student |
|---|---|---|---|---|
| flux | FluxPipeline | 2x2 patches packed into tokens | FLUX-dev: distilled input; any: true CFG | same guidance as the teacher |
| sd3 | StableDiffusion3Pipeline | B x C x h x w | classifier-free, one batched pass | no guidance: one pass per step |
| wan | WanPipeline (video) | B x C x F x h x w | classifier-free, two passes | same guidance as the teacher |

A run's ``student_cfg`` gives the student a classifier-free guidance scale of its own (``cfg_key``).
"""

from __future__ import annotations

from rats_app.errors import UserError
from rats_app.families.base import Conditioning, ModelFamily, Size
from rats_app.families.flux import FluxFamily
from rats_app.families.sd3 import SD3Family
from rats_app.families.wan import WanFamily

FAMILIES: tuple[type[ModelFamily], ...] = (FluxFamily, SD3Family, WanFamily)
SUPPORTED_PIPELINES = tuple(f.pipeline_class_name for f in FAMILIES)


def family_of(pipe) -> ModelFamily:
    """The family of a loaded pipeline, bound to it."""
    for family in FAMILIES:
        if family.supports(pipe):
            return family(pipe)
    raise UserError(f"{type(pipe).__name__} is not supported: RATS Studio drives {', '.join(SUPPORTED_PIPELINES)} models")


def family_class(pipeline_class_name: str) -> type[ModelFamily]:
    """The family of a pipeline class name (as model_index.json records it), before loading it."""
    for family in FAMILIES:
        if family.pipeline_class_name == pipeline_class_name:
            return family
    raise UserError(f"{pipeline_class_name or 'an unnamed'} pipeline is not supported: RATS Studio drives "
                    f"{', '.join(SUPPORTED_PIPELINES)} models")


def student_call(family: ModelFamily, call: dict, cfg: float = 0.0) -> dict:
    """Call settings for a RATS student: the family's student guidance (SD3: none; others unchanged),
    and with ``cfg`` > 0 its own classifier-free guidance scale (``family.cfg_key``; with no negative
    prompt set, the empty one: FluxPipeline runs true CFG only when it is given one)."""
    call = {**call, "guidance_scale": family.student_guidance(call.get("guidance_scale"))}
    if cfg > 0:
        call[family.cfg_key] = float(cfg)
        if cfg > 1 and call.get("negative_prompt") is None:
            call["negative_prompt"] = ""
    return call


def guidance_plan(family: ModelFamily, teacher: dict, student_cfg: float, sample_cfg: float,
                  sample_cfg_by_nfe: dict[int, float] | None = None) -> tuple:
    """A RATS run's guidance: the teacher's, the student's in training, the one it samples with and the
    ones it samples with at chosen step counts ({nfe: guidance}) (each ``guidance_scale`` and
    ``true_cfg_scale``), and the one negative prompt they share: encoded when any of them runs
    classifier-free guidance (None: none does). ``teacher`` holds the model's call settings."""
    by_nfe = sample_cfg_by_nfe or {}
    calls = [teacher, student_call(family, teacher, student_cfg), student_call(family, teacher, sample_cfg),
             *(student_call(family, teacher, cfg) for cfg in by_nfe.values())]
    negatives = (family.negative_prompt_for(c["guidance_scale"], c["true_cfg_scale"], c.get("negative_prompt"))
                 for c in calls)
    scales = [{k: c[k] for k in ("guidance_scale", "true_cfg_scale")} for c in calls]
    return (*scales[:3], dict(zip(by_nfe, scales[3:])), next((n for n in negatives if n is not None), None))


def budget_calls(family: ModelFamily, call: dict, scales: dict[int, float], grids: dict[int, list[float]]) -> dict:
    """A RATS LoRA's ``call_by_nfe``: for each budget with a CFG scale or a sigma grid of its own, the
    keys of ``call`` that change ({"2": {"true_cfg_scale": 1.75, "sigmas": [1.0, 0.6]}})."""
    by_nfe = {n: {k: v for k, v in student_call(family, call, scale).items() if call.get(k) != v}
              for n, scale in scales.items()}
    for n, grid in grids.items():
        by_nfe[n] = {**by_nfe.get(n, {}), "sigmas": grid}
    return {str(n): keys for n, keys in sorted(by_nfe.items())}


__all__ = ["Conditioning", "FAMILIES", "ModelFamily", "SUPPORTED_PIPELINES", "Size", "budget_calls", "family_class",
           "family_of", "guidance_plan", "student_call"]
