"""Training jobs for the app: one at a time, in a background thread, stoppable, observable.

The job trains on its own pipeline instance, so the LoRA being trained never leaks into what the
Compare tab generates meanwhile. Everything that can fail at the start of a run (config, model,
rewards, prompts, directory) fails in ``start``, at once, before anything is written; finished
or stopped runs become selectable LoRAs.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rats_app.config import TrainConfig
from rats_app.errors import ConfigError
from rats_app.models import LORA_WEIGHT_NAME
from rats_app.training.callbacks import TrainerCallback
from rats_app.worlds import REPO_ROOT, worlds

RUNS_DIR = Path(os.environ.get("RATS_RUNS_DIR", REPO_ROOT / "runs" / "app"))  # e.g. a mounted volume
UPLOAD_FILE = "upload.json"  # beside an uploaded LoRA: the model it was checked against


@dataclass
class JobState:
    status: str = "idle"            # idle | running | finished | stopped | failed
    output_dir: str | None = None
    owner: str | None = None        # who started it (a browser's id): only they may stop it
    step: int = 0
    total: int = 0
    started: float = 0.0
    message: str = ""
    metrics: list[dict] = field(default_factory=list)

    first_step: int = 0             # where this stint started (a resumed run's checkpoint)

    @property
    def eta_seconds(self) -> float | None:
        done = self.step - self.first_step
        if done <= 0 or self.status != "running":
            return None
        return (time.time() - self.started) / done * (self.total - self.step)


class _Progress(TrainerCallback):
    def __init__(self, job: "JobManager"):
        self.job = job

    def on_step_end(self, run, metrics) -> None:
        self.job.state.step = metrics.step
        self.job.state.metrics.append(asdict(metrics))

    def should_stop(self) -> bool:
        return self.job._stop.is_set()


class JobManager:
    def __init__(self, runs_dir: Path = RUNS_DIR, components_factory=None):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = JobState()
        self._components_factory = components_factory  # tests inject tiny models

    @property
    def uploads_dir(self) -> Path:
        return self.runs_dir / "uploads"

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _new_dir(self, config: TrainConfig, name: str | None) -> Path:
        base = name or f"{time.strftime('%Y%m%d-%H%M%S')}-{config.preset}"
        out, suffix = self.runs_dir / base, 1
        while out.exists():
            out, suffix = self.runs_dir / f"{base}-{suffix}", suffix + 1
        return out

    def start(self, config: TrainConfig, name: str | None = None, owner: str | None = None) -> Path:
        """Check and start a run; raises UserError (nothing written) if it cannot start."""
        with self._lock:
            self._check_free()
            out = self._new_dir(config, name)
            return self._launch(config, out, resume=False, owner=owner)

    def resume(self, run_dir: str | Path, owner: str | None = None, steps: int | None = None) -> Path:
        """Continue a stopped, killed or failed run with its own config (``steps``: a new total)."""
        from rats_app.training import resume_config

        with self._lock:
            self._check_free()
            out = Path(run_dir)
            config = resume_config(out, {"steps": steps} if steps else None)
            return self._launch(config, out, resume=True, owner=owner)

    def _check_free(self) -> None:
        if self.busy:
            raise ConfigError(f"a training run is already in progress ({self.state.output_dir}); "
                              "stop it or wait for it to finish")

    def _launch(self, config: TrainConfig, out: Path, resume: bool, owner: str | None) -> Path:
        from rats_app.training import prepare_run

        components = self._components_factory(config) if self._components_factory else None
        run = prepare_run(config, out, resume=resume, components=components)
        self._stop.clear()
        self.state = JobState(status="running", output_dir=str(out), owner=owner, step=run.trainer.step,
                              first_step=run.trainer.step, total=config.steps, started=time.time())
        self._thread = threading.Thread(target=self._run, args=(run,), daemon=True, name="rats-train")
        self._thread.start()
        return out

    def stop(self, owner: str | None = None) -> bool:
        """Ask the running job to stop after its current step; False when none is running.
        A run started by someone else is not theirs to stop (UserError)."""
        if not self.busy:
            return False
        if self.state.owner is not None and owner != self.state.owner:
            raise ConfigError("this training run was started from another browser session; only it can stop the run")
        self._stop.set()
        return True

    def wait(self, timeout: float | None = None) -> JobState:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def _run(self, run) -> None:
        try:
            trainer = run.train([_Progress(self)])
            self.state.status = "stopped" if trainer.step < trainer.config.steps else "finished"
            self.state.message = f"LoRA saved to {run.output_dir / LORA_WEIGHT_NAME}"
        except Exception as exc:  # shown in the page; the app keeps serving; the run stays resumable
            from rats_app.training.run_dir import mark_failed

            self.state.status = "failed"
            self.state.message = f"{type(exc).__name__}: {exc}"
            mark_failed(run.output_dir, run.trainer.step, self.state.message)
            traceback.print_exc()

    def latest_sample(self) -> Path | None:
        if not self.state.output_dir:
            return None
        samples = sorted((Path(self.state.output_dir) / "samples").glob("step_*.png"))
        return samples[-1] if samples else None


def _same_model(a, b) -> bool:
    from rats_app.models import resolve_model_path

    return resolve_model_path(a).resolve() == resolve_model_path(b).resolve()


def list_loras(runs_dir: Path = RUNS_DIR, uploads_dir: Path | None = None, model=None) -> dict[str, str]:
    """Selectable LoRAs: label -> directory. The worlds' shipped ones first, then finished or stopped
    runs, then uploaded LoRAs (files, not runs); with ``model``, only those made for that model."""
    loras = {}
    for world in worlds().values():
        if (world.lora_dir / LORA_WEIGHT_NAME).exists() and (model is None or _same_model(world.model_dir, model)):
            loras[f"shipped RATS ({world.lora_dir.relative_to(REPO_ROOT)})"] = str(world.lora_dir)
    for run in sorted(Path(runs_dir).glob("**/run.json")):
        try:
            status = json.loads(run.read_text()).get("status")
            run_model = json.loads((run.parent / "config.json").read_text()).get("model") if model else None
        except (OSError, ValueError):
            continue
        if status not in ("finished", "stopped") or not (run.parent / LORA_WEIGHT_NAME).exists():
            continue
        if model is None or (run_model and _same_model(run_model, model)):
            loras[f"{run.parent.relative_to(runs_dir)} ({status})"] = str(run.parent)
    for upload in sorted(Path(uploads_dir).glob(f"*/{LORA_WEIGHT_NAME}")) if uploads_dir else []:
        try:
            upload_model = json.loads((upload.parent / UPLOAD_FILE).read_text()).get("model")
        except (OSError, ValueError):
            continue
        if model is None or _same_model(upload_model, model):
            loras[f"uploaded: {upload.parent.name}"] = str(upload.parent)
    return loras
