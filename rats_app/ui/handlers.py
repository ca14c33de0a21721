"""The app's handlers as plain functions: validate UI values, call the API, shape the outputs.

They raise ``UserError`` (or ``ConfigError``) with a readable message; ``app.py`` turns those into
errors shown in the page. Tests call these directly, without a browser.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path

from rats_app.api import GeneratedImage, Studio
from rats_app.config import TrainConfig
from rats_app.errors import UserError
from rats_app.fields import default_of
from rats_app.io import filmstrip, read_prompts, save_video, write_json, write_text
from rats_app.jobs import UPLOAD_FILE, JobManager, list_loras
from rats_app.models import LORA_WEIGHT_NAME, check_seed
from rats_app.models import nfe_note as _nfe_note

MAX_PROMPT_CHARS = 300
WORLD_PROMPTS, TYPED_PROMPTS, UPLOADED_PROMPTS = "the world's prompts", "Typed list", "Uploaded file"
PROMPT_SOURCES = (WORLD_PROMPTS, TYPED_PROMPTS, UPLOADED_PROMPTS)


def check_prompt_text(prompt) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError("empty prompt: type a prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UserError(f"prompt too long ({len(prompt)} characters; at most {MAX_PROMPT_CHARS})")
    return prompt


def check_number(value, name: str) -> float | int:
    """A finite number from a form value (a number, or text); whole-number text stays an int."""
    if isinstance(value, bool):
        raise UserError(f"{name} must be a number, got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        number = int(text) if text.lstrip("+-").isdigit() else float(text)
    except ValueError:
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise UserError(f"{name}: {value!r} is not a finite number")
    return number


def nfe_note(lora_dir, nfe) -> str:
    """The line under the Student NFE slider: whether the selected RATS LoRA was trained for it."""
    try:
        return _nfe_note(lora_dir, check_int(nfe, "nfe"))
    except (UserError, OSError):
        return ""  # a LoRA that cannot be read says so where it is used


def check_int(value, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be an integer, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise UserError(f"{name} must be an integer, got {value!r}")
    return int(number)


def _reference(item: GeneratedImage, items: list[GeneratedImage]) -> GeneratedImage | None:
    """The baseline a row is compared with: the one at the same NFE, else the only one."""
    baselines = [i for i in items if i.label == "Baseline"]
    same = [i for i in baselines if i.nfe == item.nfe]
    return same[0] if same else (baselines[0] if len(baselines) == 1 else None)


def scores_table(items: list[GeneratedImage]) -> tuple[list[str], list[list]]:
    """One row per output: its scores, and in parentheses the difference to the baseline."""
    rewards = list(dict.fromkeys(name for i in items for name in i.scores))
    headers = ["column", "nfe", "latency_ms", *rewards, "cfg"]
    rows = []
    for item in items:
        reference = None if item.label == "Baseline" else _reference(item, items)
        cells = []
        for name in rewards:
            value = item.scores.get(name)
            delta = None if reference is None or value is None else value - reference.scores.get(name, value)
            cells.append("" if value is None else f"{value:.3f}" + ("" if delta is None else f" ({delta:+.3f})"))
        rows.append([f"{item.label} @ {item.nfe}", item.nfe, round(item.latency_ms, 1), *cells,
                     "" if item.cfg is None else item.cfg])
    return headers, rows


def compare_stream(studio: Studio, prompt, seed, nfe, teacher_nfe, lora):
    """The checked inputs to Studio.compare_stream: yields (items so far, headers, rows)."""
    for items in studio.compare_stream(check_prompt_text(prompt), check_seed(seed), check_int(nfe, "nfe"),
                                       check_int(teacher_nfe, "teacher_nfe"), lora=lora):
        yield (items, *scores_table(items))


def compare(studio: Studio, prompt, seed, nfe, teacher_nfe, lora) -> tuple[list[GeneratedImage], list[str], list[list]]:
    *_, last = compare_stream(studio, prompt, seed, nfe, teacher_nfe, lora)
    return last


def sweep(studio: Studio, prompt, seed, nfes, teacher_nfe, lora):
    if not nfes:
        raise UserError("choose at least one NFE")
    items = studio.sweep(check_prompt_text(prompt), check_seed(seed), [check_int(n, "nfe") for n in nfes],
                         check_int(teacher_nfe, "teacher_nfe"), lora=lora)
    headers, rows = scores_table(items)
    return items, headers, rows, frontier_plot(items)


OUTPUTS_DIR = Path(tempfile.gettempdir()) / "rats-studio-outputs"
OUTPUT_MAX_AGE_S = 15 * 60


def still(item: GeneratedImage, video: bool):
    """What an image component shows: the image, or a clip's frames side by side."""
    if not video:
        return item.image
    from PIL import Image

    return Image.fromarray(filmstrip(item.image))


def video_file(item: GeneratedImage, fps: int) -> str:
    """A clip as an mp4 for the page (old ones are pruned: Gradio keeps its own copy)."""
    import time
    import uuid

    OUTPUTS_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUTPUTS_DIR.glob("*.mp4"):
        if time.time() - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
            old.unlink(missing_ok=True)
    path = OUTPUTS_DIR / f"{item.label.lower()}-{item.nfe}-{uuid.uuid4().hex[:8]}.mp4"
    save_video(item.image, path, fps)
    return str(path)


def frontier_plot(items: list[GeneratedImage]):
    """Each numeric reward against NFE: baseline and RATS lines, the teacher dotted."""
    from rats_app.plots import frontier_figure

    rows = [{"variant": i.label, "nfe": i.nfe, **i.scores} for i in items]
    for row in rows:
        row["variant"] = row["variant"].lower()
    rewards = list(items[0].scores) if items else []
    return frontier_figure(rows, rewards)


def read_prompt_source(source: str, typed: str, upload_path: str | None, uploads_dir: Path) -> tuple[str, bool]:
    """The Train tab's prompt choice -> the config's ``prompts`` value (a file path or 'world'), and
    whether a file was written for it just now (a typed list)."""
    if source == WORLD_PROMPTS:
        return "world", False
    if source == TYPED_PROMPTS:
        lines = [ln.strip() for ln in (typed or "").splitlines() if ln.strip()]
        if not lines:
            raise UserError("the typed prompt list is empty")
        import hashlib

        text = "\n".join(lines) + "\n"
        path = Path(uploads_dir) / f"prompts-{hashlib.sha1(text.encode()).hexdigest()[:12]}.txt"
        if path.exists():  # the same list as an earlier run's (named by its content)
            return str(path), False
        write_text(path, text)
        return str(path), True
    if not upload_path:
        raise UserError("upload a prompts file (.txt, one prompt per line)")
    read_prompts(upload_path)  # validates: exists, UTF-8 text, not empty
    return str(upload_path), False


def build_train_config(form: dict) -> TrainConfig:
    """Form values -> validated TrainConfig (ConfigError names the bad field)."""
    data = dict(form)
    for f in fields(TrainConfig):
        if f.name in data and data[f.name] is not None and not isinstance(default_of(f), (bool, str, list, dict)):
            kind = type(default_of(f))
            data[f.name] = check_int(data[f.name], f.name) if kind is int else check_number(data[f.name], f.name)
    return TrainConfig.from_dict(data)


def start_training(jobs: JobManager, form: dict, source: str, typed: str, upload, owner: str | None = None) -> str:
    """Validate the form and start a run; a typed prompt list written for a run that cannot start is removed."""
    prompts, written = read_prompt_source(source, typed, upload, jobs.uploads_dir)
    try:
        out = jobs.start(build_train_config({**form, "prompts": prompts}), owner=owner)
    except Exception:
        if written:
            Path(prompts).unlink(missing_ok=True)
        raise
    return str(out)


def run_metrics(jobs: JobManager) -> list[dict]:
    """The current (or last) run's whole metrics.jsonl: survives page refreshes and app restarts."""
    if not jobs.state.output_dir:
        return []
    from rats_app.io import read_jsonl

    return read_jsonl(Path(jobs.state.output_dir) / "metrics.jsonl")


def resumable_choices(jobs: JobManager) -> list[str]:
    """Runs that can continue: stopped, failed, or 'running' but not in this app (killed)."""
    import json

    runs = []
    for run in sorted(jobs.runs_dir.parent.glob("**/run.json")):
        try:
            status = json.loads(run.read_text()).get("status")
        except (OSError, ValueError):
            continue
        alive = jobs.busy and jobs.state.output_dir == str(run.parent)
        if status in ("stopped", "failed") or (status == "running" and not alive):
            runs.append(str(run.parent))
    return runs


def estimate_text(studio: Studio, form: dict) -> str:
    """How long the form's run should take here, from a transformer pass measured on this machine."""
    try:
        config = build_train_config(form)
    except UserError as exc:
        return f"⚠️ {exc}"
    studio.load()  # waits for the model the first time (it loads in the background anyway)
    seconds = studio.estimate_training_seconds(config)
    return (f"Estimated time on this machine: **≈ {seconds / 60:.1f} min** for {config.steps} steps "
            f"({seconds / config.steps:.2f} s per step; from a measured transformer pass, so a guide, not a promise)")


def save_uploaded_lora(studio: Studio, upload_path: str | None, uploads_dir: Path) -> str:
    """Check an uploaded LoRA against the model in place (never loading it into the shared
    pipeline), then keep it under the uploads directory with the model it was checked for."""
    if not upload_path:
        raise UserError("choose a .safetensors LoRA file to upload")
    source = Path(upload_path)
    if not source.is_file():
        raise UserError(f"the upload {source.name} is gone (it may have expired); upload it again")
    if source.suffix != ".safetensors":
        raise UserError(f"LoRA uploads must be .safetensors files (never pickles): {source.name}")
    studio.check_lora(source)
    uploads_dir = Path(uploads_dir)
    target, suffix = uploads_dir / source.stem, 1
    while target.exists():
        target, suffix = uploads_dir / f"{source.stem}-{suffix}", suffix + 1
    target.mkdir(parents=True)
    shutil.copyfile(source, target / LORA_WEIGHT_NAME)
    write_json(target / UPLOAD_FILE, {"model": str(studio.model_path), "file": source.name})
    return str(target)


def lora_choices(jobs: JobManager, studio: Studio) -> dict[str, str]:
    """The LoRAs made for this studio's model: shipped, trained (by the CLI too, not only the app), uploaded."""
    return list_loras(jobs.runs_dir.parent, jobs.uploads_dir, model=studio.model_path)


def metrics_plot(metrics: list[dict]):
    from rats_app.plots import curves_figure

    return curves_figure(metrics)


def progress_text(jobs: JobManager) -> str:
    s = jobs.state
    if s.status == "idle":
        return "No training run yet."
    eta = s.eta_seconds
    eta_text = f", about {eta / 60:.1f} min left" if eta is not None else ""
    last = s.metrics[-1] if s.metrics else {}
    detail = f" — R_S {last['reward_student']:.3f}" if last else ""
    if last.get("reward_teacher") is not None:
        detail += f", R_T {last['reward_teacher']:.3f}, gate {last['gate_mean']:.2f}"
    message = f"\n\n{s.message}" if s.message else ""
    return f"**{s.status}**: step {s.step} / {s.total}{eta_text}{detail} — `{s.output_dir}`{message}"
