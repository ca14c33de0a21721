"""The pure-Python API the CLI and the UI share: load models once, generate, score, compare.

Nothing heavy happens at import time; models load on first use (thread-safe) and stay loaded.
LoRAs are loaded once each as named adapters and switched per call under the lock, so several
users can compare different LoRAs without reloading anything.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rats_app.errors import RewardUnavailable, UserError
from rats_app.families import Size, family_of, student_call
from rats_app.models import (
    DEFAULT_MODEL,
    check_lora,
    check_nfe,
    load_lora,
    load_pipeline,
    lora_record,
    resolve_lora,
    trained_call,
)
from rats_app.sampler import generate
from rats_app.worlds.base import TRUTH_PREFIX, truth_scores  # noqa: F401 (TRUTH_PREFIX: part of the API)

DEFAULT_SWEEP_NFES = (1, 2, 3, 4, 6, 8)
MAX_LOADED_LORAS = 4  # adapters kept in the shared pipeline; more are unloaded, least recently used first


@dataclass
class GeneratedImage:
    image: object            # PIL.Image; for a video model a clip (float frames F x H x W x 3 in [0, 1])
    label: str
    nfe: int
    latency_ms: float
    scores: dict[str, float] = field(default_factory=dict)  # reward (or video measure) name -> score
    cfg: float | None = None  # the classifier-free guidance scale it was made with (1 = none)


def _as_uint8(output):
    import numpy as np

    from rats_app.io import to_uint8_frames

    return to_uint8_frames(output) if not hasattr(output, "convert") else np.asarray(output.convert("RGB"))


class Studio:
    """One model (and its rewards and LoRAs) loaded once; generation is serialised by a lock."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, device: str | None = None,
                 reward_names: list[str] | None = None, call_overrides: dict | None = None):
        self.model_path = Path(model)
        self.device = device
        self.reward_names = reward_names
        self.call_overrides = call_overrides or {}  # a preset's resolution / guidance
        self._lock = threading.RLock()
        self._pipe = None
        self._info = None
        self._family = None
        self._rewards: dict[str, object] = {}
        self._reward_errors: dict[str, str] = {}
        self._adapters: OrderedDict[str, str] = OrderedDict()  # LoRA file -> adapter name, least recent first
        self._pass_seconds: dict[int, float] = {}  # batch size -> one measured transformer pass
        self._names = itertools.count()

    # ------------------------------------------------------------------ loading
    def load(self):
        with self._lock:
            if self._pipe is None:
                self._pipe, self._info = load_pipeline(self.model_path, device=self.device)
                self._family = family_of(self._pipe)
            return self._pipe, self._info

    @property
    def media(self) -> str:
        """"image" or "video" (loads the model)."""
        self.load()
        return self._family.media

    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    @property
    def info(self):
        return self.load()[1]

    def rewards(self) -> dict[str, object]:
        """Every reward that loads; failures are remembered (and shown) instead of retried."""
        from rats_app.rewards.registry import load_reward, rewards_for

        with self._lock:
            self.load()
            for name in self.reward_names or rewards_for(self._family.media):
                if name in self._rewards or name in self._reward_errors:
                    continue
                try:
                    self._rewards[name] = self._for_media(load_reward(name, device=self.device or "cpu"))
                except RewardUnavailable as exc:
                    self._reward_errors[name] = str(exc)
            return dict(self._rewards)

    def _for_media(self, reward):
        """A video model's clips are scored frame by frame by image rewards."""
        if self._family.media == "video" and reward.media == "image":
            from rats_app.rewards.video import FrameWiseReward

            return FrameWiseReward(reward)
        return reward

    def reward_errors(self) -> dict[str, str]:
        self.rewards()
        return dict(self._reward_errors)

    def _use_lora(self, lora: str | Path | None) -> None:
        """Activate one LoRA (checked and loaded the first time) or none. At most MAX_LOADED_LORAS
        stay loaded: the least recently used is unloaded first. Caller holds the lock."""
        pipe = self._pipe
        if lora is None:
            if self._adapters:
                pipe.disable_lora()
            return
        file = str(resolve_lora(lora))
        if file in self._adapters:
            self._adapters.move_to_end(file)
        else:
            while len(self._adapters) >= MAX_LOADED_LORAS:
                _, oldest = self._adapters.popitem(last=False)
                pipe.delete_adapters(oldest)
            name = f"lora{next(self._names)}"
            load_lora(pipe, file, adapter_name=name)  # checks first; a failed load leaves no adapter
            self._adapters[file] = name
        pipe.enable_lora()
        pipe.set_adapters([self._adapters[file]])

    def check_lora(self, lora: str | Path) -> str:
        """Check a LoRA against this model without touching the shared pipeline; returns its file."""
        pipe, _ = self.load()
        return str(check_lora(pipe, lora))

    # ------------------------------------------------------------------ generation
    def call_settings(self, lora: str | Path | None = None, nfe: int | None = None) -> tuple[Size, dict]:
        """The canvas and the sampler's keyword arguments: the model's call defaults, a preset's
        overrides; for a RATS LoRA the guidance (at ``nfe`` steps) and the solver it was trained with."""
        _, info = self.load()
        default = info.size(self._family)
        call = {**info.call_defaults, **self.call_overrides}
        size = Size(call.pop("height", default.height), call.pop("width", default.width),
                    call.pop("num_frames", default.frames))
        if self._family.media == "video":
            self._family.check_size(size)
        if lora is None:
            return size, call
        record = lora_record(lora)
        return size, {**student_call(self._family, call), **trained_call(record, nfe),
                      "solver": record.get("solver", "native")}

    def generate_batch(self, prompts: list[str], seeds: list[int], nfe: int,
                       lora: str | Path | None = None) -> tuple[list, float]:
        """Outputs for checked prompts, one seed each, and the batch's latency in ms."""
        outputs, latency, _ = self._generate_batch(prompts, seeds, nfe, lora)
        return outputs, latency

    def _generate_batch(self, prompts: list[str], seeds: list[int], nfe: int,
                        lora: str | Path | None) -> tuple[list, float, dict]:
        """generate_batch, and the sampler's keyword arguments it ran with."""
        self.load()
        size, call = self.call_settings(lora, nfe)
        with self._lock:
            self._use_lora(lora)  # outside inference mode: adapters loaded there could never train or reload
            start = time.perf_counter()
            outputs = generate(self._family, prompts, check_nfe(nfe), [int(s) for s in seeds], size, **call)
            return outputs, (time.perf_counter() - start) * 1000, call

    def generate(self, prompt: str, seed: int, nfe: int, label: str, lora: str | Path | None = None) -> GeneratedImage:
        _, info = self.load()
        outputs, latency, call = self._generate_batch([info.check_prompt(prompt)], [seed], nfe, lora)
        return GeneratedImage(outputs[0], label, check_nfe(nfe), latency, cfg=self._family.cfg_scale(call))

    def score(self, items: list[GeneratedImage], prompt: str) -> None:
        """Fill each item's scores: every reward that loads (``reward_errors`` says why the others
        do not), for clips the model-free temporal measures (VBench's flickering, optical-flow
        motion), and on an embedded world its checker's ground truth (``truth_scores``)."""
        for name, reward in self.rewards().items():
            values = reward.score_fast([item.image for item in items], [prompt] * len(items))
            for item, value in zip(items, values.tolist()):
                item.scores[name] = round(value, 3)
        if self._family.media == "video":
            from rats_app.rewards.video import VIDEO_MEASURES

            for item in items:
                item.scores.update({name: round(measure(item.image), 4) for name, measure in VIDEO_MEASURES.items()})
        world = self.info.world
        if world is not None and world.has_checker:  # the ground truth beside the learned proxies
            for item in items:
                item.scores.update(truth_scores(world.check(_as_uint8(item.image), prompt)))

    def default_lora(self) -> str | None:
        """The RATS LoRA shipped with this model's world, if any."""
        lora = self.info.shipped_lora()
        return None if lora is None else str(lora)

    def estimate_training_seconds(self, config) -> float:
        """A guide to a run's wall time here: transformer passes per step (teacher chain, student chain
        forward and backward, CFG doubling them) times one pass measured now at the run's batch
        size, plus a quarter for decoding, rewards and the optimizer."""
        family, (size, call) = self._family, self.call_settings()
        if config.batch_size not in self._pass_seconds:
            self._pass_seconds[config.batch_size] = self._time_one_pass(config.batch_size, size, call)
        guidance = call.get("guidance_scale")
        negative = family.negative_prompt_for(guidance, float(call.get("true_cfg_scale", 1.0)), call.get("negative_prompt"))
        guided = 2 if negative is not None else 1  # classifier-free guidance: two passes per step
        student = guided if family.student_guidance(guidance) == guidance else 1  # SD3's student runs unguided

        def passes_at(k: int) -> int:
            teacher = k * -(-config.teacher_steps // k) * guided if config.alpha > 0 else 0
            return teacher + 3 * k * student  # backward costs about two forwards
        passes = sum(p * passes_at(k) for k, p in config.student_steps_distribution.items())
        return 1.25 * config.steps * config.gradient_accumulation_steps * passes * self._pass_seconds[config.batch_size]

    @torch.no_grad()
    def _time_one_pass(self, batch: int, size: Size, call: dict) -> float:
        family, info = self._family, self._info
        prompt = info.world.sample_prompts()[0] if info.world else "a photograph"
        cond = family.encode([prompt] * batch, call.get("max_sequence_length", family.default_max_sequence_length))
        noise = family.initial_noise([torch.Generator("cpu").manual_seed(i) for i in range(batch)], size, torch.float32)
        velocity = family.velocity(noise, cond, size, guidance_scale=1.0)
        t = torch.tensor(500.0, device=noise.device)
        with self._lock:
            self._use_lora(None)
            velocity(noise, t)  # warm-up
            start = time.perf_counter()
            velocity(noise, t)
            return time.perf_counter() - start

    @staticmethod
    def check_nfes(nfes, teacher_nfe: int) -> tuple[list[int], int]:
        """The one NFE rule of compare and sweep: valid step counts, the teacher's at least the students'."""
        nfes = sorted({check_nfe(n) for n in nfes})
        if not nfes:
            raise UserError("choose at least one NFE")
        teacher_nfe = check_nfe(teacher_nfe, "teacher_nfe")
        if teacher_nfe < nfes[-1]:
            raise UserError(f"teacher NFE ({teacher_nfe}) must be at least the student NFE ({nfes[-1]})")
        return nfes, teacher_nfe

    def compare_stream(self, prompt: str, seed: int, nfe: int, teacher_nfe: int = 50,
                       lora: str | Path | None = "shipped"):
        """Baseline @ nfe and RATS @ nfe first (they are quick), then the teacher @ teacher_nfe too:
        yields the items done so far, scored; all three share the prompt, seed and noise."""
        (nfe,), teacher_nfe = self.check_nfes([nfe], teacher_nfe)
        lora = self.default_lora() if lora == "shipped" else lora
        students = [self.generate(prompt, seed, nfe, "Baseline")]
        if lora is not None:
            students.append(self.generate(prompt, seed, nfe, "RATS", lora=lora))
        self.score(students, prompt)
        yield students
        teacher = self.generate(prompt, seed, teacher_nfe, "Teacher")
        self.score([teacher], prompt)
        yield [teacher, *students]

    def compare(self, prompt: str, seed: int, nfe: int, teacher_nfe: int = 50,
                lora: str | Path | None = "shipped") -> list[GeneratedImage]:
        """Teacher @ teacher_nfe, baseline @ nfe and RATS @ nfe: same prompt, seed and noise."""
        *_, items = self.compare_stream(prompt, seed, nfe, teacher_nfe, lora)
        return items

    def sweep(self, prompt: str, seed: int, nfes=DEFAULT_SWEEP_NFES, teacher_nfe: int = 50,
              lora: str | Path | None = "shipped") -> list[GeneratedImage]:
        """Baseline and RATS at each NFE plus the teacher: the efficiency-quality frontier."""
        nfes, teacher_nfe = self.check_nfes(nfes, teacher_nfe)
        lora = self.default_lora() if lora == "shipped" else lora
        items = [self.generate(prompt, seed, teacher_nfe, "Teacher")]
        for n in nfes:
            items.append(self.generate(prompt, seed, n, "Baseline"))
            if lora is not None:
                items.append(self.generate(prompt, seed, n, "RATS", lora=lora))
        self.score(items, prompt)
        return items
