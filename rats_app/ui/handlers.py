"""The app's handlers as plain functions: validate UI values, call the API, shape the outputs.

They raise ``UserError`` (or ``ConfigError``) with a readable message; ``app.py`` turns those into
errors shown in the page. Tests call these directly, without a browser.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from rats_app.api import GeneratedImage, Studio
from rats_app.config import ConfigError, TrainConfig
from rats_app.jobs import JobManager, list_loras
from rats_app.models import LORA_WEIGHT_NAME, UserError

MAX_PROMPT_CHARS = 300


def check_seed(seed) -> int:
    try:
        value = float(seed)
    except (TypeError, ValueError):
        raise UserError(f"seed must be an integer, got {seed!r}") from None
    if not math.isfinite(value) or value != int(value) or not 0 <= value < 2**63:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    return int(value)


def check_prompt_text(prompt) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError("empty prompt: type a prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UserError(f"prompt too long ({len(prompt)} characters; at most {MAX_PROMPT_CHARS})")
    return prompt


def check_int(value, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be an integer, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise UserError(f"{name} must be an integer, got {value!r}")
    return int(number)


def scores_table(items: list[GeneratedImage]) -> tuple[list[str], list[list]]:
    rewards = list(items[0].scores) if items else []
    headers = ["column", "nfe", "latency_ms", *rewards]
    rows = [[f"{i.label} @ {i.nfe}", i.nfe, round(i.latency_ms, 1), *(i.scores[r] for r in rewards)] for i in items]
    return headers, rows


def compare(studio: Studio, prompt, seed, nfe, teacher_nfe, lora) -> tuple[list[GeneratedImage], list[str], list[list]]:
    items = studio.compare(check_prompt_text(prompt), check_seed(seed), check_int(nfe, "nfe"),
                           check_int(teacher_nfe, "teacher_nfe"), lora=lora)
    headers, rows = scores_table(items)
    return items, headers, rows


def sweep(studio: Studio, prompt, seed, nfes, teacher_nfe, lora):
    if not nfes:
        raise UserError("choose at least one NFE")
    items = studio.sweep(check_prompt_text(prompt), check_seed(seed), [check_int(n, "nfe") for n in nfes],
                         check_int(teacher_nfe, "teacher_nfe"), lora=lora)
    headers, rows = scores_table(items)
    return items, headers, rows, frontier_plot(items)


def frontier_plot(items: list[GeneratedImage]):
    """Each numeric reward against NFE: baseline and RATS lines, the teacher dotted."""
    from rats_app.plots import frontier_figure

    rows = [{"variant": i.label, "nfe": i.nfe, **i.scores} for i in items]
    for row in rows:
        row["variant"] = row["variant"].lower()
    rewards = [r for r in items[0].scores if isinstance(items[0].scores[r], float)] if items else []
    return frontier_figure(rows, rewards)


def read_prompt_source(source: str, typed: str, upload_path: str | None, uploads_dir: Path) -> str:
    """The Train tab's prompt choice -> the config's ``prompts`` value (a file path or 'world')."""
    if source == "Shapes World prompts":
        return "world"
    if source == "Typed list":
        lines = [ln.strip() for ln in (typed or "").splitlines() if ln.strip()]
        if not lines:
            raise UserError("the typed prompt list is empty")
        import hashlib

        text = "\n".join(lines) + "\n"
        path = Path(uploads_dir) / f"prompts-{hashlib.sha1(text.encode()).hexdigest()[:12]}.txt"
        from rats_app.io import write_text

        write_text(path, text)
        return str(path)
    if not upload_path:
        raise UserError("upload a prompts file (.txt, one prompt per line)")
    from rats_app.generate import read_prompts

    read_prompts(upload_path)  # validates: exists, UTF-8 text, not empty
    return str(upload_path)


def build_train_config(form: dict) -> TrainConfig:
    """Form values -> validated TrainConfig (ConfigError names the bad field)."""
    data = dict(form)
    for key in ("watch_rewards", "lora_targets"):
        if isinstance(data.get(key), str):
            data[key] = [x.strip() for x in data[key].split(",") if x.strip()]
    for key, kind in (("student_steps", int), ("teacher_steps", int), ("lora_rank", int), ("steps", int),
                      ("batch_size", int), ("seed", int), ("sample_every", int), ("checkpoint_every", int)):
        if key in data and data[key] is not None:
            data[key] = check_int(data[key], key)
    return TrainConfig.from_dict(data)


def start_training(jobs: JobManager, form: dict, source: str, typed: str, upload) -> str:
    form = {**form, "prompts": read_prompt_source(source, typed, upload, jobs.uploads_dir)}
    out = jobs.start(build_train_config(form))
    return str(out)


def save_uploaded_lora(studio: Studio, upload_path: str, uploads_dir: Path) -> str:
    """Validate an uploaded LoRA (safetensors, fits the model) and keep it under runs/uploads."""
    source = Path(upload_path)
    if source.suffix != ".safetensors":
        raise UserError(f"LoRA uploads must be .safetensors files (never pickles): {source.name}")
    with open(source, "rb") as f:
        header = f.read(8)
    if len(header) < 8 or int.from_bytes(header, "little") > 100_000_000:
        raise UserError(f"{source.name} is not a safetensors file")
    uploads_dir = Path(uploads_dir)
    target, suffix = uploads_dir / source.stem, 1
    while target.exists():
        target, suffix = uploads_dir / f"{source.stem}-{suffix}", suffix + 1
    target.mkdir(parents=True)
    shutil.copyfile(source, target / LORA_WEIGHT_NAME)
    try:
        studio.check_lora(target)
    except Exception:
        shutil.rmtree(target, ignore_errors=True)  # a LoRA that does not fit is not kept
        raise
    (target / "run.json").write_text('{"status": "finished", "uploaded": true}\n')
    return str(target)


def lora_choices(jobs: JobManager) -> dict[str, str]:
    return list_loras(jobs.runs_dir.parent)  # runs from the CLI too, not only the app's


def metrics_plot(metrics: list[dict]):
    from rats_app.plots import curves_figure

    return curves_figure(metrics)


def progress_text(jobs: JobManager) -> str:
    s = jobs.state
    if s.status == "idle":
        return "No training run yet."
    eta = s.eta_seconds
    eta_text = f", ETA {eta:.0f} s" if eta is not None else ""
    last = s.metrics[-1] if s.metrics else {}
    detail = (f" — R_S {last['reward_student']:.3f}" if last else "")
    message = f"\n\n{s.message}" if s.message else ""
    return f"**{s.status}**: step {s.step} / {s.total}{eta_text}{detail} — `{s.output_dir}`{message}"
